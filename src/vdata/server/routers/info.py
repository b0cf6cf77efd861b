"""Server information and limits, liveness and readiness, statistics, the donation link."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from vdata import __version__
from vdata.server import db, store
from vdata.server.auth import moderation_enabled
from vdata.server.responses import json_response
from vdata.server.state import State

router = APIRouter()


@router.get("/v1/", summary="Server information and limits")
async def info(state: State) -> Response:
    settings = state.settings
    return json_response(
        {
            "name": "vdata",
            "version": __version__,
            "docs": "/docs",
            "moderation": await run_in_threadpool(moderation_enabled, state.engine, settings.moderator_token),
            "limits": {
                "batch_size": settings.batch_size,
                "max_body_bytes": settings.max_body_bytes,
                "put_rate_per_s": settings.put_rate,
                "put_burst": settings.put_burst,
                "query_timeout_s": settings.query_timeout_s,
                "query_row_limit": settings.query_row_limit,
                "max_page": settings.max_page,
            },
        }
    )


@router.get("/healthz", summary="Liveness: the process answers")
async def health() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the database answers and the schema is current")
def ready(state: State) -> Response:
    try:
        db.ping(state.engine)
        current, head = db.current_revision(state.engine), db.head_revision()
    except Exception as e:  # any database failure means not ready
        return json_response({"status": "unavailable", "reason": type(e).__name__}, 503)
    if current != head:
        return json_response({"status": "migrating", "schema": current, "expected": head}, 503)
    body = {"status": "ready", "schema": current}
    if state.replica is not None:
        body["replica"] = state.replica.status()
    return json_response(body)


@router.get("/v1/donate", summary="The project's donation link and message")
async def donate(state: State) -> Response:
    return json_response({"url": state.settings.donate_url, "message": state.settings.donate_message})


@router.get("/v1/stats", summary="Counts by category, strategy, provider, status, and contributions per day")
def get_stats(state: State) -> Response:
    return json_response(state.read(store.stats))
