"""The server's own statements (SQLAlchemy Core, bound parameters only)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vdata.core.records import Record, normalise_text
from vdata.server.db import PUBLIC_COLUMNS, record_store

FULL_COLUMNS: tuple[str, ...] = (
    *PUBLIC_COLUMNS,
    "attributes",
    "params",
    "prompt_sha256",
    "vdata_version",
    "status",
    "submitted_at",
)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_sha256(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq after which the next page starts; ValueError for a cursor this server did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ValueError("invalid cursor") from e
    if not raw.startswith("s") or not raw[1:].isdigit() or len(raw) > 20:
        raise ValueError("invalid cursor")
    return int(raw[1:])


@dataclass
class PutOutcome:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _row_for(record: Record, contributor: str, submitted_at: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "content_sha256": content_sha256(record.text),
        "text": record.text,
        "target": record.target,
        "attribute": record.attribute,
        "category": record.category,
        "strategy": record.strategy,
        "attributes": None
        if record.attributes is None
        else json.dumps(record.attributes, ensure_ascii=False),
        "provider": record.provider,
        "model": record.model,
        "prompt_sha256": record.prompt_sha256,
        "params": json.dumps(record.params, ensure_ascii=False),
        "created_at": record.created_at,
        "vdata_version": record.vdata_version,
        "contributor": contributor,
        "status": "pending",
        "submitted_at": submitted_at,
    }


def put_records(engine: Engine, records: Sequence[Record], contributor: str) -> PutOutcome:
    """Store new records as pending in one transaction; report duplicates (same normalised text)."""
    outcome = PutOutcome()
    if not records:
        return outcome
    submitted_at = now_utc()
    with engine.begin() as conn:
        ids = list({r.id for r in records})
        existing: set[str] = set()
        # Chunked IN lists keep within SQLite's bound-parameter limit.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            existing.update(
                conn.execute(select(record_store.c.id).where(record_store.c.id.in_(chunk))).scalars()
            )
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in records:
            if record.id in existing or record.id in seen:
                outcome.duplicates.append(record.id)
                continue
            seen.add(record.id)
            rows.append(_row_for(record, contributor, submitted_at))
            outcome.accepted.append(record.id)
        if rows:
            insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
            # A concurrent PUT of the same text wins the race harmlessly: nothing is stored twice.
            conn.execute(insert(record_store).on_conflict_do_nothing(), rows)
    return outcome


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@functools.lru_cache(maxsize=128)
def _records_statement(
    columns: tuple[str, ...],
    by_category: bool,
    by_strategy: bool,
    by_provider: bool,
    by_text: bool,
    after: bool,
) -> Select[Any]:
    """One statement per filter shape, built once: SQLAlchemy then reuses its compiled form."""
    cols = [record_store.c.seq, *(record_store.c[name] for name in columns)]
    stmt = select(*cols).where(record_store.c.status == bindparam("status"))
    if by_category:
        stmt = stmt.where(record_store.c.category.in_(bindparam("categories", expanding=True)))
    if by_strategy:
        stmt = stmt.where(record_store.c.strategy == bindparam("strategy"))
    if by_provider:
        stmt = stmt.where(record_store.c.provider == bindparam("provider"))
    if by_text:
        stmt = stmt.where(func.lower(record_store.c.text).like(bindparam("pattern"), escape="\\"))
    if after:
        stmt = stmt.where(record_store.c.seq > bindparam("after_seq"))
    return stmt.order_by(record_store.c.seq).limit(bindparam("limit"))


def records_query(
    *,
    status: str,
    columns: Sequence[str],
    categories: Sequence[str] = (),
    strategy: str | None = None,
    provider: str | None = None,
    q: str | None = None,
    after_seq: int | None = None,
    limit: int,
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement and its bound parameters for one page of records (user input only in parameters)."""
    stmt = _records_statement(
        tuple(columns), bool(categories), bool(strategy), bool(provider), bool(q), after_seq is not None
    )
    params: dict[str, Any] = {"status": status, "limit": limit}
    if categories:
        params["categories"] = list(categories)
    if strategy:
        params["strategy"] = strategy
    if provider:
        params["provider"] = provider
    if q:
        params["pattern"] = f"%{_escape_like(q.lower())}%"
    if after_seq is not None:
        params["after_seq"] = after_seq
    return stmt, params


def fetch_page(
    engine: Engine, query: tuple[Select[Any], dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of one keyset page (the statement asks for limit + 1) and the cursor of the next page."""
    stmt, params = query
    with engine.connect() as conn:
        result = conn.execute(stmt, params)
        keys = list(map(str, result.keys()))[1:]
        raw = result.fetchall()
    more = len(raw) > limit
    raw = raw[:limit]
    rows = [dict(zip(keys, r[1:], strict=True)) for r in raw]
    next_cursor = encode_cursor(raw[-1][0]) if more and raw else None
    return rows, next_cursor


def set_status(engine: Engine, record_id: str, status: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(record_store)
            .where(record_store.c.id == bindparam("rid"))
            .values(status=status, moderated_at=now_utc()),
            {"rid": record_id},
        )
        return bool(result.rowcount)


def stats(engine: Engine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    approved = record_store.c.status == "approved"
    with engine.connect() as conn:
        out["total"] = conn.execute(select(func.count()).select_from(record_store)).scalar_one()
        out["by_status"] = dict(
            conn.execute(select(record_store.c.status, func.count()).group_by(record_store.c.status)).all()
        )
        for name in ("category", "strategy", "provider"):
            col = record_store.c[name]
            out[f"by_{name}"] = dict(
                conn.execute(select(col, func.count()).where(approved).group_by(col)).all()
            )
        day = func.substr(record_store.c.submitted_at, 1, 10)
        out["contributions_by_day"] = [
            {"day": d, "records": n}
            for d, n in conn.execute(select(day, func.count()).group_by(day).order_by(day)).all()
        ]
    return out
