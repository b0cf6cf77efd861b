"""Migration 0005: the counts behind /v1/stats and the `stats` view stay exact through every write path
(PUT, moderation, direct UPDATE and DELETE, concurrent writers), and a database that already holds
records gets its counts filled when it is upgraded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, delete, func, select, text, update

from vdata.server import db, store
from vdata.server.db import record_store

from .conftest import Server, new_db_url, run_in_threads, sample_records
from .snapshot_helpers import add_records, downgrade

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def stats_by_scan(engine: Engine) -> dict[str, Any]:
    """What /v1/stats must say, counted the slow way: a GROUP BY over every stored record."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                record_store.c.status,
                record_store.c.category,
                record_store.c.strategy,
                record_store.c.provider,
                record_store.c.submitted_at,
            )
        ).all()
    approved = [r for r in rows if r.status == "approved"]
    days = Counter(r.submitted_at[:10] for r in rows)
    return {
        "total": len(rows),
        "by_status": dict(Counter(r.status for r in rows)),
        "by_category": dict(Counter(r.category for r in approved)),
        "by_strategy": dict(Counter(r.strategy for r in approved)),
        "by_provider": dict(Counter(r.provider for r in approved)),
        "contributions_by_day": [{"day": d, "records": n} for d, n in sorted(days.items())],
    }


def stats_view_by_scan(engine: Engine) -> set[tuple[Any, ...]]:
    c = record_store.c
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(c.status, c.category, c.strategy, c.provider, func.count()).group_by(
                    c.status, c.category, c.strategy, c.provider
                )
            ).all()
        )


def test_stats_stay_exact_through_puts_moderation_and_direct_sql(fresh_server: Server) -> None:
    server = fresh_server
    engine = server.engine
    assert server.http.get("/v1/stats").json() == stats_by_scan(engine)
    ids: list[str] = []
    for category in ("gender", "race", "religion"):
        batch = sample_records(7, "Counted", category)
        batch[0]["provider"] = "other"
        response = server.http.put("/v1/records", json=batch + batch[:2], params={"contributor": "c"})
        ids += response.json()["accepted"]
    # A repeated PUT stores nothing: the counts must not move either.
    server.http.put("/v1/records", json=sample_records(7, "Counted", "gender"))
    for record_id in ids[:9]:
        assert server.moderate(record_id, "approved").status_code == 200
    for record_id in ids[9:12]:
        assert server.moderate(record_id, "rejected").status_code == 200
    assert server.moderate(ids[0], "rejected").status_code == 200  # approved -> rejected
    with engine.begin() as conn:
        conn.execute(update(record_store).where(record_store.c.id == ids[1]).values(category="race"))
        conn.execute(
            update(record_store).where(record_store.c.id == ids[2]).values(submitted_at="2024-01-02")
        )
        conn.execute(delete(record_store).where(record_store.c.id == ids[3]))
        conn.execute(update(record_store).where(record_store.c.id == ids[4]).values(model="no count change"))
    expected = stats_by_scan(engine)
    assert expected["by_status"] == {"approved": 7, "rejected": 4, "pending": 9}
    assert server.http.get("/v1/stats").json() == expected
    # The public `stats` view (what /v1/query sees) reads the same counts, with the same rows as before.
    response = server.http.get(
        "/v1/query", params={"sql": "SELECT status, category, strategy, provider, n FROM stats"}
    )
    assert response.status_code == 200, response.text
    assert {tuple(r) for r in response.json()["rows"]} == stats_view_by_scan(engine)


@pytest.mark.postgres
def test_postgres_counts_exact_under_concurrent_writers_and_compaction(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = db.make_engine(new_db_url("postgres", request, tmp_path_factory))
    db.upgrade(engine)

    def writer(n: int) -> None:
        for i in range(15):
            ids = add_records(engine, 4, ("gender", "race", "age")[i % 3], f"w{n}-{i}", status="pending")
            with engine.begin() as conn:
                conn.execute(
                    update(record_store)
                    .where(record_store.c.id.in_(ids[:2]))
                    .values(status="approved", moderated_at=store.now_utc())
                )
            if i % 5 == 0:
                with engine.begin() as conn:
                    store.compact_counts(conn)

    run_in_threads(writer, 6)
    assert store.stats(engine) == stats_by_scan(engine)
    with engine.begin() as conn:
        delta_rows = conn.execute(text("SELECT count(*) FROM record_counts")).scalar_one()
        store.compact_counts(conn)
        folded = conn.execute(text("SELECT count(*) FROM record_counts")).scalar_one()
    groups = len(stats_view_by_scan(engine))
    assert folded == groups < delta_rows
    assert store.stats(engine) == stats_by_scan(engine)
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_fills_the_counts_of_existing_records(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = new_db_url(backend, request, tmp_path_factory)
    engine = create_engine(url)
    config = db.alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    add_records(engine, 12, "gender", "Old", status="approved")
    add_records(engine, 5, "race", "Old", status="pending")
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert store.stats(engine) == stats_by_scan(engine)
    assert store.stats(engine)["by_category"] == {"gender": 12}
    downgrade(engine, "0003")  # and down again: the old view and no count tables
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT status, category, strategy, provider, n FROM stats")).all()) == (
            stats_view_by_scan(engine)
        )
    engine.dispose()
