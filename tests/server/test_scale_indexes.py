"""Migration 0005's index on the approval time serves the incremental snapshot's window query."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from vdata.server import db
from vdata.server.db import record_store
from vdata.server.snapshot import _window

from .snapshot_helpers import add_records


def test_snapshot_window_uses_the_approval_time_index(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'server.sqlite3'}")
    db.upgrade(engine)
    add_records(engine, 200, "gender", "Indexed", moderated_at="2026-01-01T00:00:00Z")
    stmt = _window(
        select(record_store.c.id).where(record_store.c.status == "approved"),
        "2026-01-02T00:00:00Z",
        "2026-01-03T00:00:00Z",
    )
    compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert conn.execute(stmt).all() == []
    engine.dispose()
    assert "ix_record_store_approved_at" in plan, plan
