"""GET /v1/contributions/{id}: a contribution batch as its contributor sees it (the id comes in the PUT
response): each record's status and the reason of any decision, and the gate's automatic report."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from starlette.concurrency import run_in_threadpool

from vdata.server import gate, moderation_store
from vdata.server.responses import json_response
from vdata.server.state import ServerState, State

BATCH_ID_PATTERN = r"^[0-9a-f]{16}$"

router = APIRouter()


def _public_flags(flags: list[dict[str, str]]) -> list[dict[str, str]]:
    """A record's flags without the ids of other people's records that are not public yet."""
    out = []
    for f in flags:
        if f["kind"] == "near-duplicate" and not f["detail"].endswith("(approved)"):
            f = {"kind": f["kind"], "detail": "a stored record that is not public (yet)"}
        out.append(f)
    return out


def contribution(state: ServerState, batch_id: str) -> dict[str, Any] | None:
    batch = moderation_store.batch_status(state.engine, batch_id)
    if batch is None:
        return None
    stored = gate.read_reports(state.engine, [batch_id]).get(batch_id)
    report: dict[str, Any] = {"status": stored["status"] if stored else "off"}
    if stored and stored["report"]:
        body = stored["report"]
        report |= {
            "finished_at": stored["finished_at"],
            "recommendation": body["recommendation"],
            "flag_counts": body["flag_counts"],
            "auto_rejected": body["auto_rejected"],
            "rules": body["rules"],
            "groups": body["groups"],
            "direction": body["direction"],
        }
        for record in batch["records"]:
            record["flags"] = _public_flags(body["flags"].get(record["id"], []))
    elif stored and stored["status"] == "failed":
        report["error"] = "the automatic report failed; a moderator reviews the batch without it"
    batch["by_status"] = dict(Counter(r["status"] for r in batch["records"]))
    batch["report"] = report
    return batch


@router.get(
    "/v1/contributions/{batch_id}",
    summary="A contribution batch: each record's status and why, and the automatic report",
)
async def get_contribution(
    state: State, batch_id: Annotated[str, Path(pattern=BATCH_ID_PATTERN)]
) -> Response:
    found = await run_in_threadpool(contribution, state, batch_id)
    if found is None:
        raise HTTPException(404, f"no contribution batch {batch_id}; use the id a PUT /v1/records returned")
    return json_response(found)
