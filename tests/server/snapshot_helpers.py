"""Shared by the snapshot tests: a database with approved, pending and rejected records, filled directly
(the snapshot reads the database, not the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update

from vdata.core.records import Record
from vdata.server import db, store
from vdata.server.db import record_store

SUBMITTED_AT = "2025-12-31T00:00:00Z"


def make_db(url: str) -> Engine:
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to `revision` (db.upgrade's way back, for the migrations' tests)."""
    from alembic import command

    config = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def add_records(
    engine: Engine,
    n: int,
    category: str,
    prefix: str,
    status: str = "approved",
    moderated_at: str | None = None,
) -> list[str]:
    records = [
        Record(
            text=f"{prefix} sentence {i} in {category}: anyone can be an engineer or a nurse.",
            target="engineer",
            attribute="anyone",
            category=category,
            strategy="targeted" if i % 2 else "general",
            provider="stub",
            model=f"model-{i % 3}",
            prompt_sha256=f"{i % 2:x}" * 64,
            params={"temperature": 0.7},
        )
        for i in range(n)
    ]
    ids = store.put_records(engine, records, "tester").accepted
    # Submitted before any moderation time the tests use (they take snapshots at chosen times).
    values: dict[str, Any] = {"submitted_at": SUBMITTED_AT}
    if status != "pending":
        values.update(status=status, moderated_at=moderated_at or store.now_utc())
    with engine.begin() as conn:
        conn.execute(update(record_store).where(record_store.c.id.in_(ids)).values(**values))
    return ids


def set_status(engine: Engine, ids: list[str], status: str, moderated_at: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(record_store)
            .where(record_store.c.id.in_(ids))
            .values(status=status, moderated_at=moderated_at)
        )


def snapshot_settings(url: str, out: Path, **extra: Any) -> Any:
    from vdata.server.snapshot import make_settings

    return make_settings(db_url=url, out_dir=out, settle_s=0, **extra)
