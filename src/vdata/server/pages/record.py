"""`/records/{id}`: the permalink of one approved record, with everything stored about it."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from vdata.server import browse
from vdata.server.moderation_store import moderation_history
from vdata.server.pages.render import error_page, render


def record_context(record: dict[str, object]) -> dict[str, object]:
    """The template context of a record page. `history` (a list of {at, moderator, old, new, reason},
    oldest first) is the record's moderation history from the moderation audit log; the page shows the
    section only when the context carries it."""
    return {
        "record": record,
        "params_json": json.dumps(record["params"], indent=2, ensure_ascii=False, sort_keys=True),
        "attributes_json": None
        if record["attributes"] is None
        else json.dumps(record["attributes"], indent=2, ensure_ascii=False, sort_keys=True),
    }


async def record_page(request: Request) -> HTMLResponse:
    record_id = request.path_params["record_id"]
    engine = request.app.state.vdata.read_engine
    record = None
    if len(record_id) <= 64:
        record = await run_in_threadpool(browse.fetch_record, engine, record_id)
    if record is None:
        # Pending and rejected records are not public: they look exactly like unknown ids.
        return error_page(request, 404, "No such record", "No approved record has this id.")
    events = await run_in_threadpool(moderation_history, engine, record_id)
    history = [
        {
            "at": e["at"],
            "moderator": e["moderator"],
            "old": e["old_status"],
            "new": e["new_status"],
            "reason": e["reason"],
        }
        for e in events
    ]
    return render(request, "record.html", {**record_context(record), "history": history})
