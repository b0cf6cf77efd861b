"""Storage of contributions through SQLAlchemy Core (SQLite or PostgreSQL).

Schema changes go through the Alembic migrations shipped in `vdata/server/migrations`; `migrate()`
brings a database to the newest revision and is run on every start. All queries here are built with
SQLAlchemy expressions and bound parameters: user input never becomes SQL text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vdata.core.records import Record, normalise_text

STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")
PUBLIC_COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "target",
    "attribute",
    "category",
    "strategy",
    "provider",
    "model",
    "created_at",
    "contributor",
)
READONLY_ROLE = "vdata_readonly"  # PostgreSQL role the public SQL endpoint runs as

metadata = MetaData()

# Mirrors migration 0001; the migration is the source of truth for the database, this for the queries.
contributions = Table(
    "contributions",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("text", Text, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("target", Text, nullable=False, default=""),
    Column("attribute", Text, nullable=False, default=""),
    Column("category", Text, nullable=False, default=""),
    Column("strategy", Text, nullable=False, default=""),
    Column("attributes", Text),
    Column("provider", Text, nullable=False, default=""),
    Column("model", Text, nullable=False, default=""),
    Column("prompt_sha256", Text, nullable=False, default=""),
    Column("params", Text, nullable=False, default="{}"),
    Column("created_at", Text, nullable=False, default=""),
    Column("vdata_version", Text, nullable=False, default=""),
    Column("contributor", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="pending"),
    Column("submitted_at", Text, nullable=False),
    Column("moderated_at", Text),
    Index("ix_contributions_status_id", "status", "id"),
    Index("ix_contributions_status_category_id", "status", "category", "id"),
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_sha256(text: str) -> str:
    """The server's own content hash: the full SHA-256 of the normalised text (the id is its prefix)."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def make_engine(db_url: str, pool_size: int = 8) -> Engine:
    if db_url.startswith("sqlite:///"):
        sqlite_path(db_url).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            db_url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers (and the read-only query connections) work while a batch is being written.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(db_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest Alembic revision shipped with vdata."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


# ------------------------------------------------------------------------------------------- writes


def row_for(record: Record, contributor: str, now: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "text": record.text,
        "content_sha256": content_sha256(record.text),
        "target": record.target,
        "attribute": record.attribute,
        "category": record.category,
        "strategy": record.strategy,
        "attributes": json.dumps(record.attributes, ensure_ascii=False)
        if record.attributes is not None
        else None,
        "provider": record.provider,
        "model": record.model,
        "prompt_sha256": record.prompt_sha256,
        "params": json.dumps(record.params, ensure_ascii=False),
        "created_at": record.created_at,
        "vdata_version": record.vdata_version,
        "contributor": contributor,
        "status": "pending",
        "submitted_at": now,
        "moderated_at": None,
    }


@dataclass
class StoreResult:
    accepted: list[str]
    duplicates: list[str]


def store_batch(engine: Engine, records: Sequence[Record], contributor: str) -> StoreResult:
    """Insert a batch in one transaction. Known texts (same normalised text = same id) are duplicates."""
    now = utc_now()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    order: list[str] = []
    for r in records:
        order.append(r.id)
        if r.id not in seen:
            seen.add(r.id)
            rows.append(row_for(r, contributor, now))
    inserted: set[str] = set()
    if rows:
        insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(contributions).on_conflict_do_nothing(index_elements=["id"]).returning(contributions.c.id)
        )
        with engine.begin() as conn:
            inserted = set(conn.execute(stmt, rows).scalars().all())
    accepted: list[str] = []
    duplicates: list[str] = []
    for rid in order:
        if rid in inserted:
            accepted.append(rid)
            inserted.discard(rid)  # a second copy inside the same batch is a duplicate
        else:
            duplicates.append(rid)
    return StoreResult(accepted, duplicates)


def set_status(engine: Engine, record_id: str, status: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(contributions)
            .where(contributions.c.id == record_id)
            .values(status=status, moderated_at=utc_now())
        )
        return result.rowcount == 1


# -------------------------------------------------------------------------------------------- reads


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_records(
    engine: Engine,
    *,
    status: str = "approved",
    categories: Sequence[str] = (),
    strategy: str | None = None,
    provider: str | None = None,
    q: str | None = None,
    after: str | None = None,
    limit: int = 100,
    columns: Sequence[str] = PUBLIC_COLUMNS,
) -> list[tuple[Any, ...]]:
    """Keyset page of records ordered by id: rows with id > `after`, at most `limit` + 1 of them."""
    c = contributions.c
    stmt = select(*[c[name] for name in columns]).where(c.status == status)
    if categories:
        stmt = stmt.where(c.category.in_(list(categories)))
    if strategy:
        stmt = stmt.where(c.strategy == strategy)
    if provider:
        stmt = stmt.where(c.provider == provider)
    if q:
        stmt = stmt.where(func.lower(c.text).like(f"%{_escape_like(q.lower())}%", escape="\\"))
    if after:
        stmt = stmt.where(c.id > after)
    stmt = stmt.order_by(c.id).limit(limit + 1)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


def stats(engine: Engine) -> dict[str, Any]:
    c = contributions.c
    approved = c.status == "approved"
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        out["status"] = {s: 0 for s in STATUSES}
        for status, n in conn.execute(select(c.status, func.count()).group_by(c.status)):
            out["status"][status] = n
        for dimension in ("category", "strategy", "provider"):
            col = c[dimension]
            rows = conn.execute(select(col, func.count()).where(approved).group_by(col).order_by(col))
            out[dimension] = {value: n for value, n in rows}
        day = func.substr(c.submitted_at, 1, 10)
        rows = conn.execute(
            select(day, c.status, func.count()).group_by(day, c.status).order_by(day, c.status)
        )
        over_time: dict[str, dict[str, int]] = {}
        for d, status, n in rows:
            over_time.setdefault(d, {s: 0 for s in STATUSES})[status] = n
        out["contributions_by_day"] = [{"day": d, **counts} for d, counts in over_time.items()]
    out["approved_total"] = out["status"]["approved"]
    return out
