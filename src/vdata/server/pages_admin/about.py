"""GET /about: licence, how the data is made, public moderation statistics, running costs and donations."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from vdata.server import costs, moderation_store
from vdata.server.pages_admin.render import page
from vdata.server.state import server_state

LICENCE = (
    "vdata is free software under the MIT licence; the records of this public dataset are published "
    "under the same licence."
)
# The statistics sort every decided record (median review time): computed at most once a minute.
STATS_TTL_S = 60.0
_cache: dict[int, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _figures(engine: Engine) -> dict[str, Any]:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(id(engine))
        if hit and now - hit[0] < STATS_TTL_S:
            return hit[1]
    months = costs.ledger(engine)
    figures = {
        "stats": moderation_store.moderation_stats(engine),
        "ledger": months,
        "chart": costs.chart(months),
    }
    with _cache_lock:
        _cache[id(engine)] = (now, figures)
    return figures


def duration(seconds: float) -> str:
    """A review time as people say it: minutes under two hours, hours under two days, else days."""
    if seconds < 7200:
        return f"{max(1, round(seconds / 60))} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def add_routes(router: APIRouter) -> None:
    @router.get("/about")
    async def about(request: Request) -> Response:
        state = server_state(request)
        url = state.settings.donate_url
        context = await run_in_threadpool(_figures, state.engine)
        context |= {
            "licence": LICENCE,
            "cost_items": costs.COST_ITEMS,
            "money": costs.money,
            "duration": duration,
            "donate_message": state.settings.donate_message,
            # Only web links: an operator's typo must not become a javascript: link.
            "donate_url": url if url and url.startswith(("https://", "http://")) else None,
        }
        return page(request, "about.html", context)
