"""Records: GET /v1/records (approved records, filtered, keyset pages) and PUT /v1/records (contributions)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from vdata.core.records import PUBLIC_COLUMNS, Record, check_publishable, parse_record
from vdata.server import moderation_store, store
from vdata.server.responses import Format, json_page_response, json_response, page_response
from vdata.server.routing import QueryModelRoute
from vdata.server.settings import ServerSettings
from vdata.server.state import ServerState, State, server_state

MAX_CATEGORIES = 50  # category values per GET /v1/records (there are 9 categories and their intersections)
MAX_CONTRIBUTOR = 100

router = APIRouter()


class RecordsQuery(BaseModel):
    """The query parameters of GET /v1/records: their validation and their OpenAPI description."""

    category: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list,
        max_length=MAX_CATEGORIES,
        description="Only these categories; repeat for several",
    )
    strategy: str | None = Field(None, max_length=40)
    provider: str | None = Field(None, max_length=200)
    q: str | None = Field(None, max_length=200, description="Case-insensitive substring of the text")
    limit: int = Field(100, ge=1, le=100_000, description="Page size (capped by the server's max_page)")
    cursor: str | None = Field(None, max_length=40, description="next_cursor of the previous page")
    format: Format = "json"

    @field_validator("strategy", "provider", "q", "cursor")
    @classmethod
    def _empty_is_absent(cls, value: str | None) -> str | None:
        return value or None


def decode_cursor(cursor: str | None) -> int | None:
    """The seq a page starts after, from a client's cursor; 400 for one this server did not issue."""
    if not cursor:
        return None
    try:
        return store.decode_cursor(cursor)
    except ValueError:
        raise HTTPException(400, "invalid cursor; use the next_cursor of the previous page") from None


def _fetch_records(state: ServerState, query: store.PageQuery, fmt: Format) -> Response:
    if fmt == "json" and state.engine.dialect.name in store.JSON_DIALECTS:
        return json_page_response(*state.read(store.fetch_page_json, query))
    rows, next_cursor = state.read(store.fetch_page, query)
    return page_response(rows, next_cursor, fmt, PUBLIC_COLUMNS)


async def get_records(request: Request, query: Annotated[RecordsQuery, Query()]) -> Response:
    # The hottest endpoint: QueryModelRoute calls it with the request and the validated parameters only.
    state = server_state(request)
    page_query = store.records_query(
        status="approved",
        columns=PUBLIC_COLUMNS,
        categories=query.category,
        strategy=query.strategy,
        provider=query.provider,
        q=query.q,
        after_seq=decode_cursor(query.cursor),
        limit=min(query.limit, state.settings.max_page),
    )
    if state.settings.is_sqlite:
        # A local SQLite page takes well under a millisecond: cheaper inline than a thread hop.
        return _fetch_records(state, page_query, query.format)
    pool = state.async_read_pool()
    if query.format == "json" and pool is not None:
        # PostgreSQL: native asyncio reads (see pgread.py), no thread hop.
        if pool is state.replica_pool and state.replica is not None:
            return json_page_response(*await state.replica.run_async(pool, state.read_pool, page_query))
        return json_page_response(*await pool.fetch_page_json(page_query))
    # Over the network a stalled database must not block the event loop.
    return await run_in_threadpool(_fetch_records, state, page_query, query.format)


router.add_api_route(
    "/v1/records",
    get_records,
    methods=["GET"],
    summary="Approved records, filtered, with keyset pagination",
    route_class_override=QueryModelRoute,
)


PUT_BODY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": Record.model_json_schema(),
    "description": "vdata records as written by `vdata gen` (ids are recomputed by the server).",
}


@router.put(
    "/v1/records",
    summary="Contribute records (stored pending until a moderator approves them)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": PUT_BODY_SCHEMA}}}
    },
    responses={
        200: {
            "description": "Stored: ids accepted and ids that were already known, and the batch's "
            "contribution id with the URL of its automatic report"
        },
        400: {"description": "Body is not UTF-8 JSON"},
        413: {"description": "Body or batch too large"},
        422: {"description": "Some records are invalid; nothing was stored"},
        429: {"description": "Too many PUTs from this client; see Retry-After"},
    },
)
async def put_records(
    request: Request,
    state: State,
    contributor: Annotated[str, Query(max_length=MAX_CONTRIBUTOR, description="Your name or handle")] = "",
) -> Response:
    # The rate limit and the body-size limit are middleware (middleware.py): done before this runs.
    if any(ord(c) < 32 or ord(c) == 127 for c in contributor):
        raise HTTPException(422, "contributor contains control characters")
    body = await request.body()
    return await run_in_threadpool(_store_body, state, body, contributor)


def _store_body(state: ServerState, body: bytes, contributor: str) -> Response:
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPException(
            400, f"body is not UTF-8 (bad byte at offset {e.start}); send UTF-8 JSON"
        ) from None
    try:
        rows = orjson.loads(decoded)
    except orjson.JSONDecodeError as e:
        raise HTTPException(400, f"body is not valid JSON: {e}") from None
    if not isinstance(rows, list):
        raise HTTPException(422, "body must be a JSON array of vdata records")
    batch_size = state.settings.batch_size
    if len(rows) > batch_size:
        raise HTTPException(
            413, f"batch of {len(rows)} records exceeds the limit of {batch_size}; send smaller batches"
        )
    records: list[Record] = []
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        # The body was parsed by orjson, which refuses unpaired surrogates: strings are valid Unicode here.
        try:
            records.append(check_publishable(parse_record(row), state.settings.strategies))
        except ValueError as e:
            rid = row.get("id") if isinstance(row, dict) else None
            errors.append({"index": index, "id": rid if isinstance(rid, str) else None, "reason": str(e)})
    if errors:
        return json_response(
            {
                "detail": f"{len(errors)} of {len(rows)} records are invalid; nothing was stored",
                "errors": errors,
            },
            422,
        )
    outcome = store.put_records(state.engine, records, contributor.strip())
    # The queue groups pending records by the PUT they came in (moderation_store.note_batch); the
    # gate's report on the batch is queued with it and made after this response (gate_worker.py).
    gate = state.gate
    batch_id = moderation_store.note_batch(
        state.engine, outcome.accepted, contributor.strip(), queue_report=gate is not None
    )
    if gate is not None and batch_id is not None:
        gate.notify()
    body: dict[str, Any] = {"accepted": outcome.accepted, "duplicates": outcome.duplicates, "rejected": []}
    if batch_id is not None:
        body["contribution"] = contribution_summary(batch_id, state.settings)
    return json_response(body)


def contribution_summary(batch_id: str, settings: ServerSettings) -> dict[str, Any]:
    """What a PUT tells the contributor about the batch it stored: where its report will be, and the
    operator's auto-reject rules that report may apply."""
    return {
        "id": batch_id,
        "url": f"/v1/contributions/{batch_id}",
        "report": "pending" if settings.gate else "off",
        "auto_reject": list(settings.auto_reject) if settings.gate else [],
        "note": "The automatic report on this batch is made after this response; records it rejects "
        "are listed with the reason at the url."
        if settings.gate and settings.auto_reject
        else "",
    }
