"""The public dataset server: a FastAPI app over `store` (writes/reads) and `query` (read-only SQL).

Public API: GET and PUT only. Contributions arrive `pending` and become visible (GET /v1/records, the
`records` view of /v1/query) only after a moderator approves them with the token from
VDATA_MODERATOR_TOKEN.
"""

from __future__ import annotations

import csv
import functools
import hmac
import io
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vdata import __version__
from vdata.core.records import STRATEGIES, Record, validate_category
from vdata.server import db, store
from vdata.server.pgread import AsyncReadPool
from vdata.server.query import QueryRefused, check_sql, run_postgres, run_sqlite
from vdata.server.settings import ServerSettings

access_log = logging.getLogger("vdata.access")
log = logging.getLogger("vdata.server")

Format = Literal["json", "csv", "text"]
STREAM_THRESHOLD = 500
MAX_CATEGORIES = 50  # category values per GET /v1/records (there are 9 categories and their intersections)
# Longest value accepted per record field (the text itself is limited by the Record model).
FIELD_LIMITS: dict[str, int] = {
    "target": 1000,
    "attribute": 1000,
    "category": 200,
    "strategy": 40,
    "provider": 200,
    "model": 300,
    "prompt_sha256": 64,
    "created_at": 40,
    "vdata_version": 40,
}
MAX_CONTRIBUTOR = 100
RECORD_ID_PATTERN = r"^[0-9a-f]{16}$"


# ------------------------------------------------------------------------------------ helpers


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    return str(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default)


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status_code=status_code, media_type="application/json", headers=headers)


def _csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _text_line(row: dict[str, Any] | tuple[Any, ...]) -> str:
    if isinstance(row, dict) and "text" in row:
        value = str(row["text"])
    else:
        value = "\t".join(
            "" if v is None else str(v) for v in (row.values() if isinstance(row, dict) else row)
        )
    return value.replace("\r", " ").replace("\n", " ") + "\n"


def _chunks(lines: Iterable[bytes], size: int = 256) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)


def _body(parts: Iterable[bytes], media_type: str, headers: dict[str, str], stream: bool) -> Response:
    if stream:
        return StreamingResponse(_chunks(parts), media_type=media_type, headers=headers)
    return Response(b"".join(parts), media_type=media_type, headers=headers)


class TokenBucket:
    """Per-client token bucket for PUT: `rate` requests per second with bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > 100_000:  # forget idle clients
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


class AccessLog:
    """Pure ASGI middleware: one JSON line per request on the `vdata.access` logger."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                            "client": client[0] if client else None,
                        }
                    )
                )


class RequestGuard:
    """Pure ASGI middleware, before any routing or body parsing: a declared body over the limit gets 413
    (whatever the endpoint), and a NUL in the query string gets 400 (PostgreSQL text cannot hold one)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if b"%00" in scope.get("query_string", b""):
                await self._refuse(send, 400, "query parameters must not contain NUL characters (%00)")
                return
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                    await self._refuse(
                        send, 413, f"body of {int(value)} bytes exceeds the limit of {self.max_body_bytes}"
                    )
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        body = dumps({"detail": detail})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class StatusChange(BaseModel):
    status: Literal["approved", "rejected", "pending"]


def _validate_record(row: Any) -> Record:
    """One PUT record, with the server's rules on top of the Record model. Raises ValueError(reason)."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    try:
        record = Record(**{k: v for k, v in row.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise ValueError(f"{where}: {first['msg']}") from None
    except TypeError as e:
        raise ValueError(str(e)) from None
    # The body was parsed by orjson, which refuses unpaired surrogates: strings are valid Unicode here.
    if "\x00" in record.text:
        raise ValueError("text: contains a NUL character")
    for name, limit in FIELD_LIMITS.items():
        value = getattr(record, name)
        if len(value) > limit:
            raise ValueError(f"{name}: longer than {limit} characters")
        if "\x00" in value:
            raise ValueError(f"{name}: contains a NUL character")
    if record.category:
        record.category = _canonical_category(record.category)
    if record.strategy and record.strategy not in STRATEGIES:
        raise ValueError(f"strategy: unknown {record.strategy!r}; allowed: {', '.join(STRATEGIES)}")
    return record


# Categories repeat across a batch; canonicalise each spelling once.
_canonical_category = functools.lru_cache(maxsize=4096)(validate_category)


PUT_BODY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": Record.model_json_schema(),
    "description": "vdata records as written by `vdata gen` (ids are recomputed by the server).",
}


# --------------------------------------------------------------------------------------- app


def create_app(settings: ServerSettings, *, migrate: bool = True) -> FastAPI:
    """The app. `migrate`: bring the schema up to date at start (off in workers, whose parent did it)."""
    engine = db.make_engine(settings.db_url)
    limiter = TokenBucket(settings.put_rate, settings.put_burst)
    query_role: dict[str, str | None] = {}
    read_pool = AsyncReadPool(engine) if engine.dialect.name == "postgresql" else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await run_in_threadpool(db.upgrade, engine)
        if not settings.is_sqlite:
            query_role["role"] = await run_in_threadpool(_usable_role)
        log.info(json.dumps({"event": "ready", "db": engine.url.render_as_string(hide_password=True)}))
        yield
        if read_pool is not None:
            await read_pool.close()
        engine.dispose()

    def _usable_role() -> str | None:
        from sqlalchemy import text

        with engine.connect() as conn:
            ok = conn.execute(
                text(
                    "SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = :n"
                ),
                {"n": settings.readonly_role},
            ).scalar()
        if not ok:
            log.warning(
                "role %s is missing or not granted to the server's user: /v1/query runs in READ ONLY "
                "transactions with a timeout, without the role layer",
                settings.readonly_role,
            )
            return None
        return settings.readonly_role

    app = FastAPI(
        title="vdata public dataset",
        version=__version__,
        description="A public, moderated dataset of debiasing sentences. Contributions by PUT, reads by GET.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    bearer = HTTPBearer(auto_error=False, description="Moderator token (VDATA_MODERATOR_TOKEN on the server)")

    def require_moderator(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> None:
        if not settings.moderator_token:
            raise HTTPException(
                403, "moderation is disabled on this server: it was started without VDATA_MODERATOR_TOKEN"
            )
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "moderator token required: send Authorization: Bearer TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), settings.moderator_token.encode()):
            raise HTTPException(401, "wrong moderator token", headers={"WWW-Authenticate": "Bearer"})

    # ---------------------------------------------------------------------------- info, health

    @app.get("/", include_in_schema=False)
    @app.get("/v1/", summary="Server information and limits")
    async def info() -> Response:
        return json_response(
            {
                "name": "vdata",
                "version": __version__,
                "docs": "/docs",
                "moderation": bool(settings.moderator_token),
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

    @app.get("/healthz", summary="Liveness: the process answers")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", summary="Readiness: the database answers and the schema is current")
    def ready() -> Response:
        try:
            db.ping(engine)
            current, head = db.current_revision(engine), db.head_revision()
        except Exception as e:  # any database failure means not ready
            return json_response({"status": "unavailable", "reason": type(e).__name__}, 503)
        if current != head:
            return json_response({"status": "migrating", "schema": current, "expected": head}, 503)
        return json_response({"status": "ready", "schema": current})

    @app.get("/v1/donate", summary="The project's donation link and message")
    async def donate() -> Response:
        return json_response({"url": settings.donate_url, "message": settings.donate_message})

    # ------------------------------------------------------------------------------- records

    @app.put(
        "/v1/records",
        summary="Contribute records (stored pending until a moderator approves them)",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": PUT_BODY_SCHEMA}}}
        },
        responses={
            200: {"description": "Stored: ids accepted and ids that were already known"},
            400: {"description": "Body is not UTF-8 JSON"},
            413: {"description": "Body or batch too large"},
            422: {"description": "Some records are invalid; nothing was stored"},
            429: {"description": "Too many PUTs from this client; see Retry-After"},
        },
    )
    async def put_records(
        request: Request,
        contributor: Annotated[
            str, Query(max_length=MAX_CONTRIBUTOR, description="Your name or handle")
        ] = "",
    ) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = limiter.take(client)
        if wait > 0:
            raise HTTPException(
                429,
                f"too many uploads from {client}; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in contributor):
            raise HTTPException(422, "contributor contains control characters")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise HTTPException(
                413, f"body of {declared} bytes exceeds the limit of {settings.max_body_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise HTTPException(413, f"body exceeds the limit of {settings.max_body_bytes} bytes")
            chunks.append(chunk)
        return await run_in_threadpool(_store_body, b"".join(chunks), contributor)

    def _store_body(body: bytes, contributor: str) -> Response:
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
        if len(rows) > settings.batch_size:
            raise HTTPException(
                413,
                f"batch of {len(rows)} records exceeds the limit of {settings.batch_size}; send smaller batches",
            )
        records: list[Record] = []
        errors: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            try:
                records.append(_validate_record(row))
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
        outcome = store.put_records(engine, records, contributor.strip())
        return json_response({"accepted": outcome.accepted, "duplicates": outcome.duplicates, "rejected": []})

    def _page_response(
        rows: list[dict[str, Any]], next_cursor: str | None, fmt: Format, columns: tuple[str, ...]
    ) -> Response:
        if fmt == "json":
            return _json_page_response([dumps(r) for r in rows], next_cursor)
        headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
        stream = len(rows) > STREAM_THRESHOLD
        if fmt == "csv":
            lines = (_csv_line(r.values()).encode() for r in rows)
            return _body(
                _prepend(_csv_line(columns).encode(), lines), "text/csv; charset=utf-8", headers, stream
            )
        return _body((_text_line(r).encode() for r in rows), "text/plain; charset=utf-8", headers, stream)

    def _fetch_records(query: store.PageQuery, fmt: Format) -> Response:
        if fmt == "json" and engine.dialect.name in store.JSON_DIALECTS:
            return _json_page_response(*store.fetch_page_json(engine, query))
        rows, next_cursor = store.fetch_page(engine, query)
        return _page_response(rows, next_cursor, fmt, db.PUBLIC_COLUMNS)

    @app.get(
        "/v1/records",
        summary="Approved records, filtered, with keyset pagination",
        openapi_extra={"parameters": RECORDS_PARAMETERS},
    )
    async def get_records(request: Request) -> Response:
        # The hottest endpoint: parameters are checked here by hand (declared for OpenAPI above),
        # which costs a fraction of FastAPI's generic parameter solving.
        params = request.query_params
        category = params.getlist("category")
        strategy = _text_param(params, "strategy", 40)
        provider = _text_param(params, "provider", 200)
        q = _text_param(params, "q", 200)
        cursor = _text_param(params, "cursor", 40)
        limit = _int_param(params, "limit", 100, 1, 100_000)
        format = params.get("format", "json")
        if format not in ("json", "csv", "text"):
            raise HTTPException(422, f"format must be json, csv or text, not {format[:20]!r}")
        if any(len(c) > 200 for c in category):
            raise HTTPException(422, "category: longer than 200 characters")
        if len(category) > MAX_CATEGORIES:
            raise HTTPException(422, f"category: at most {MAX_CATEGORIES} values")
        limit = min(limit, settings.max_page)
        after = _cursor(cursor)
        page_query = store.records_query(
            status="approved",
            columns=db.PUBLIC_COLUMNS,
            categories=category,
            strategy=strategy,
            provider=provider,
            q=q,
            after_seq=after,
            limit=limit,
        )
        if settings.is_sqlite:
            # A local SQLite page takes well under a millisecond: cheaper inline than a thread hop.
            return _fetch_records(page_query, format)
        if format == "json" and read_pool is not None:
            # PostgreSQL: native asyncio reads (see pgread.py), no thread hop.
            return _json_page_response(*await read_pool.fetch_page_json(page_query))
        # Over the network a stalled database must not block the event loop.
        return await run_in_threadpool(_fetch_records, page_query, format)

    @app.get("/v1/query", summary="Read-only SQL over the views `records` and `stats`")
    def query(
        sql: Annotated[str, Query(description="One SELECT over records and stats")],
        format: Annotated[Format, Query()] = "json",
    ) -> Response:
        dialect = "sqlite" if settings.is_sqlite else "postgres"
        try:
            check_sql(sql, dialect)
            if settings.is_sqlite:
                path = engine.url.database or ""
                result = run_sqlite(path, sql, settings.query_timeout_s, settings.query_row_limit)
            else:
                result = run_postgres(
                    engine.raw_connection,
                    sql,
                    settings.query_timeout_s,
                    settings.query_row_limit,
                    query_role.get("role"),
                )
        except QueryRefused as e:
            raise HTTPException(400, str(e)) from None
        headers = {"X-Truncated": "true"} if result.truncated else {}
        if format == "json":
            return json_response(
                {
                    "columns": result.columns,
                    "rows": result.rows,
                    "truncated": result.truncated,
                    "row_limit": settings.query_row_limit,
                    "elapsed_ms": round(result.elapsed_ms, 2),
                },
                headers=headers,
            )
        stream = len(result.rows) > STREAM_THRESHOLD
        if format == "csv":
            lines = (_csv_line(r).encode() for r in result.rows)
            return _body(
                _prepend(_csv_line(result.columns).encode(), lines),
                "text/csv; charset=utf-8",
                headers,
                stream,
            )
        return _body(
            (_text_line(r).encode() for r in result.rows), "text/plain; charset=utf-8", headers, stream
        )

    @app.get("/v1/stats", summary="Counts by category, strategy, provider, status, and contributions per day")
    def get_stats() -> Response:
        return json_response(store.stats(engine))

    # ----------------------------------------------------------------------------- moderation

    @app.put(
        "/v1/records/{record_id}/status",
        summary="Approve or reject a record (moderators)",
        dependencies=[Depends(require_moderator)],
    )
    def moderate(
        record_id: Annotated[str, Path(pattern=RECORD_ID_PATTERN)], change: StatusChange
    ) -> Response:
        if not store.set_status(engine, record_id, change.status):
            raise HTTPException(404, f"no record with id {record_id}")
        return json_response({"id": record_id, "status": change.status})

    @app.get(
        "/v1/moderation/queue",
        summary="Pending records, oldest first (moderators)",
        dependencies=[Depends(require_moderator)],
    )
    def moderation_queue(
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
    ) -> Response:
        limit = min(limit, settings.max_page)
        page_query = store.records_query(
            status="pending", columns=store.FULL_COLUMNS, after_seq=_cursor(cursor), limit=limit
        )
        rows, next_cursor = store.fetch_page(engine, page_query)
        return json_response({"records": rows, "next_cursor": next_cursor})

    # The hottest endpoint is also served by a plain Starlette route placed first: the same handler
    # without FastAPI's per-request dependency solving and wrapping (it takes only the Request). The
    # FastAPI route above stays for the OpenAPI schema; requests never reach it.
    app.router.routes.insert(0, Route("/v1/records", get_records, methods=["GET"], include_in_schema=False))
    return app


RECORDS_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "category",
        "in": "query",
        "description": "Only these categories; repeat for several",
        "schema": {"type": "array", "items": {"type": "string", "maxLength": 200}},
        "style": "form",
        "explode": True,
    },
    {"name": "strategy", "in": "query", "schema": {"type": "string", "maxLength": 40}},
    {"name": "provider", "in": "query", "schema": {"type": "string", "maxLength": 200}},
    {
        "name": "q",
        "in": "query",
        "description": "Case-insensitive substring of the text",
        "schema": {"type": "string", "maxLength": 200},
    },
    {
        "name": "limit",
        "in": "query",
        "description": "Page size (capped by the server's max_page)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 100},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "next_cursor of the previous page",
        "schema": {"type": "string", "maxLength": 40},
    },
    {
        "name": "format",
        "in": "query",
        "schema": {"type": "string", "enum": ["json", "csv", "text"], "default": "json"},
    },
]


def _text_param(params: Any, name: str, max_length: int) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > max_length:
        raise HTTPException(422, f"{name}: longer than {max_length} characters")
    return value or None


def _int_param(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"{name} must be an integer, not {raw[:20]!r}") from None
    if not low <= value <= high:
        raise HTTPException(422, f"{name} must be between {low} and {high}")
    return value


def _cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return store.decode_cursor(cursor)
    except ValueError:
        raise HTTPException(400, "invalid cursor; use the next_cursor of the previous page") from None


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _json_page_response(rows: Sequence[bytes | str], next_cursor: str | None) -> Response:
    """`{"records": [...], "next_cursor": ...}` from rows already serialised (bytes, or JSON text from the
    database); streamed when large. The next page's cursor is also in the X-Next-Cursor header."""
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    json_rows = [r.encode() if isinstance(r, str) else r for r in rows]
    tail = b'],"next_cursor":' + dumps(next_cursor) + b"}"
    if len(json_rows) <= STREAM_THRESHOLD:
        return Response(
            b'{"records":[' + b",".join(json_rows) + tail, media_type="application/json", headers=headers
        )

    def parts() -> Iterator[bytes]:
        yield b'{"records":['
        for i in range(0, len(json_rows), 256):
            yield (b"," if i else b"") + b",".join(json_rows[i : i + 256])
        yield tail

    return StreamingResponse(parts(), media_type="application/json", headers=headers)
