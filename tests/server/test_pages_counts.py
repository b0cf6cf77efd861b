"""The pages' counts: facets of a broad filter counted over a sample with an exact total, and the count
cache (stale values served while one background refresh runs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, update

from vdata.server import browse, db, store
from vdata.server.store import content_sha256


def _store_with(path: Path, n: int) -> Engine:
    engine = db.make_engine(f"sqlite:///{path / 's.sqlite3'}")
    db.upgrade(engine)
    rows = []
    for i in range(n):
        text = f"Record {i} about a {'pilot' if i % 2 else 'nurse'} who is kind"
        sha = content_sha256(text)
        rows.append(
            {
                "id": sha[:16], "content_sha256": sha, "text": text, "target": "t", "attribute": "a",
                "category": ("gender", "race")[i % 2], "strategy": "targeted", "provider": f"p{i % 3}",
                "model": "m", "prompt_sha256": "", "params": "{}", "created_at": "2026-01-01T00:00:00Z",
                "vdata_version": "0", "contributor": "c", "status": "approved" if i % 10 else "pending",
                "submitted_at": "2026-01-01T00:00:00Z",
            }
        )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(db.record_store), rows)
    return engine


def test_broad_filter_facets_sample_with_exact_total(tmp_path: Path) -> None:
    n = browse.FACET_SAMPLE * 2 + 500
    engine = _store_with(tmp_path, n)
    try:
        approved = sum(1 for i in range(n) if i % 10)
        everything = browse.facet_counts(engine, browse.Filters())
        assert everything["total"] == approved and not everything["sampled"]
        broad = browse.facet_counts(engine, browse.Filters(strategy="targeted"))
        assert broad["total"] == approved and broad["sampled"]
        assert broad["counted"] == browse.FACET_SAMPLE
        assert sum(count for _, count in broad["facets"]["category"]) == browse.FACET_SAMPLE
        searched = browse.facet_counts(engine, browse.Filters(q="pilot"))
        assert searched["total"] == sum(1 for i in range(n) if i % 10 and i % 2)
        assert dict(searched["facets"]["category"]) == {"race": browse.FACET_SAMPLE}
        narrow = browse.facet_counts(engine, browse.Filters(q="pilot", provider="p1"))
        assert not narrow["sampled"] and narrow["total"] == narrow["counted"]
    finally:
        engine.dispose()


def test_count_cache_serves_stale_values_while_refreshing() -> None:
    cache = browse.TtlCache(ttl_s=0.05)
    calls: list[int] = []
    gate = threading.Event()

    def compute() -> int:
        calls.append(1)
        if len(calls) > 1:
            gate.wait(5)
        return len(calls)

    assert cache.get("k", compute) == 1
    time.sleep(0.06)
    assert cache.get("k", compute) == 1  # stale: served at once, refresh started aside
    assert cache.get("k", compute) == 1  # no second refresh while one runs
    gate.set()
    deadline = time.monotonic() + 5
    while cache.peek("k") != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.peek("k") == 2 and len(calls) == 2
    assert browse.TtlCache(ttl_s=0).get("x", lambda: 7) == 7


def test_unfiltered_counts_from_the_count_tables_equal_the_group_bys(tmp_path: Path) -> None:
    """The home page's figures and the unfiltered facets read category, strategy and provider from the
    trigger-kept count tables: the same as grouping the rows, after inserts and a moderation."""
    engine = _store_with(tmp_path, 300)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(db.record_store).where(db.record_store.c.provider == "p2").values(status="rejected")
            )
        c = db.record_store.c
        with engine.connect() as conn:
            grouped = {
                name: conn.execute(
                    select(c[name], func.count())
                    .where(c.status == "approved")
                    .group_by(c[name])
                    .order_by(func.count().desc(), c[name])
                ).all()
                for name in store.COUNTED_COLUMNS
            }
            by_status = dict(conn.execute(select(c.status, func.count()).group_by(c.status)).all())
        overview = browse.overview(engine)
        facets = browse.facet_counts(engine, browse.Filters())
        assert overview["by_status"] == by_status == {"approved": 180, "pending": 20, "rejected": 100}
        for name, rows in grouped.items():
            assert overview[f"by_{name}"] == [tuple(r) for r in rows]
            assert facets["facets"][name] == [tuple(r) for r in rows][: browse.FACET_LIMIT]
        assert facets["total"] == 180
        assert overview["by_provider"] == [("p0", 90), ("p1", 90)]
    finally:
        engine.dispose()
