"""Moderation over JSON (a moderator's bearer token): the queue, decisions on one record, a selection or
a whole contribution batch, each written to the append-only moderation log with who, when and why."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vdata.server import gate, moderation_store, store
from vdata.server.auth import Moderator, require_moderator
from vdata.server.responses import json_response
from vdata.server.routers.records import decode_cursor
from vdata.server.state import State

RECORD_ID_PATTERN = r"^[0-9a-f]{16}$"
BATCH_ID_PATTERN = r"^[0-9a-f]{16}$"
MAX_SELECTION = 10_000

router = APIRouter(dependencies=[Depends(require_moderator)])

Status = Literal["approved", "rejected", "pending"]
Reason = Annotated[str, Field(max_length=moderation_store.MAX_REASON)]


class StatusChange(BaseModel):
    status: Status
    reason: Reason = ""


class SelectionChange(StatusChange):
    ids: list[Annotated[str, Field(pattern=RECORD_ID_PATTERN)]] = Field(
        min_length=1, max_length=MAX_SELECTION
    )


def _decide(state: State, decision: moderation_store.Decision) -> moderation_store.DecisionOutcome:
    return moderation_store.decide(state.engine, decision)


@router.put("/v1/records/{record_id}/status", summary="Approve or reject a record (moderators)")
async def moderate(
    state: State,
    moderator: Moderator,
    record_id: Annotated[str, Path(pattern=RECORD_ID_PATTERN)],
    change: StatusChange,
) -> Response:
    decision = moderation_store.Decision(moderator, change.status, change.reason, (record_id,))
    outcome = await run_in_threadpool(_decide, state, decision)
    if outcome.missing:
        raise HTTPException(404, f"no record with id {record_id}")
    return json_response({"id": record_id, "status": change.status})


@router.put("/v1/moderation/status", summary="Approve or reject a selection of records (moderators)")
async def moderate_selection(state: State, moderator: Moderator, change: SelectionChange) -> Response:
    decision = moderation_store.Decision(moderator, change.status, change.reason, tuple(change.ids))
    outcome = await run_in_threadpool(_decide, state, decision)
    return json_response(
        {"changed": outcome.changed, "unchanged": outcome.unchanged, "missing": outcome.missing}
    )


@router.put(
    "/v1/moderation/batches/{batch_id}/status",
    summary="Approve or reject the pending records of a contribution batch (moderators)",
)
async def moderate_batch(
    state: State,
    moderator: Moderator,
    batch_id: Annotated[str, Path(pattern=BATCH_ID_PATTERN)],
    change: StatusChange,
) -> Response:
    decision = moderation_store.Decision(moderator, change.status, change.reason, batch_id=batch_id)
    outcome = await run_in_threadpool(_decide, state, decision)
    return json_response({"batch": batch_id, "changed": outcome.changed})


@router.get("/v1/moderation/queue", summary="Pending records, oldest first (moderators)")
def moderation_queue(
    state: State,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    page_query = store.records_query(
        status="pending",
        columns=store.FULL_COLUMNS,
        after_seq=decode_cursor(cursor),
        limit=min(limit, state.settings.max_page),
    )
    rows, next_cursor = store.fetch_page(state.engine, page_query)
    return json_response({"records": rows, "next_cursor": next_cursor})


@router.get("/v1/moderation/batches", summary="Pending records grouped by contribution batch and contributor")
def moderation_batches(
    state: State,
    contributor: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> Response:
    batches = moderation_store.pending_queue(
        state.engine, contributor=contributor, category=category or None, limit=limit
    )
    reports = gate.read_reports(state.engine, [b.batch_id for b in batches if b.batch_id])
    return json_response(
        {
            "batches": [
                {
                    "batch": b.batch_id or None,
                    "contributor": b.contributor,
                    "submitted_at": b.submitted_at,
                    "report": reports.get(b.batch_id),
                    "records": [
                        {k: v for k, v in r.items() if k not in ("seq", "batch_id")} for r in b.records
                    ],
                }
                for b in batches
            ]
        }
    )
