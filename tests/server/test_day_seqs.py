"""PostgreSQL: each day's seq bounds (migration 0009) and the resumed searches that read only the months
holding their stretch of seq (partitions.submitted_in_seq_range). The bounds cover every row after any
write, compaction or migration; a resumed step skips the other months' partitions; and the answers stay
the scan's, whatever the order of seq and submission dates."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, text, update

from vdata.server import db, partitions, seq_search, store
from vdata.server.db import record_store

from .snapshot_helpers import downgrade, make_db
from .test_substring_search import put_texts, search, word_search

pytestmark = pytest.mark.postgres

MONTHS = ["2025-01", "2025-02", "2025-03"]


@pytest.fixture
def engine(postgres_cluster: Any) -> Engine:
    engine = make_db(postgres_cluster.create_database())
    with engine.begin() as conn:
        for month in MONTHS:
            partitions.ensure_partition(conn, month)
    return engine


def submit_in(engine: Engine, ids: list[str], months: list[str]) -> None:
    """Give the records of `ids` the submission day of `months` (their partitions), one by one."""
    with engine.begin() as conn:
        for i, (record_id, month) in enumerate(zip(ids, months, strict=True)):
            day = f"{month}-{1 + i % 28:02d}T10:00:00Z"
            conn.execute(update(record_store).where(record_store.c.id == record_id).values(submitted_at=day))


def uncovered_rows(engine: Engine) -> list[tuple[int, str]]:
    """(seq, day) of the rows that the day bounds do not place: none when every day's bounds hold its
    rows (a day with an added row without bounds holds all)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT r.seq, substr(r.submitted_at, 1, 10) FROM record_store r WHERE NOT EXISTS ("
                    "SELECT 1 FROM record_days d WHERE d.day = substr(r.submitted_at, 1, 10) AND "
                    "((d.n > 0 AND d.min_seq IS NULL) OR r.seq BETWEEN d.min_seq AND d.max_seq))"
                )
            )
        )


def test_the_day_bounds_hold_every_row_after_writes_compaction_and_migrations(engine: Engine) -> None:
    ids = put_texts(engine, [f"Record {i}: a nurse at work." for i in range(60)])
    submit_in(engine, ids[:40], [MONTHS[i % 3] for i in range(40)])  # moved: the update trigger
    with engine.begin() as conn:
        conn.execute(delete(record_store).where(record_store.c.id.in_(ids[50:55])))
    put_texts(engine, ["A later nurse.", "A later pilot."])
    assert uncovered_rows(engine) == []
    with engine.begin() as conn:
        store.compact_counts(conn)
        folded = conn.execute(text("SELECT count(*), count(DISTINCT day) FROM record_days")).one()
    assert folded[0] == folded[1] and uncovered_rows(engine) == []
    with engine.begin() as conn:  # a hand-made row of counts: its day's rows may lie anywhere, even folded
        conn.execute(text("INSERT INTO record_days (day, n) VALUES ('2025-01-01', 1)"))
        store.compact_counts(conn)
        unknown = conn.execute(text("SELECT min_seq FROM record_days WHERE day = '2025-01-01'")).scalar_one()
    assert unknown is None
    downgrade(engine, "0008_one_key")
    db.upgrade(engine)  # 0009 again: the bounds counted from the rows
    with engine.connect() as conn:
        exact = conn.execute(
            text(
                "SELECT count(*) FROM record_days d JOIN (SELECT substr(submitted_at, 1, 10) AS day, "
                "min(seq) AS lo, max(seq) AS hi FROM record_store GROUP BY 1) r USING (day) "
                "WHERE d.min_seq = r.lo AND d.max_seq = r.hi"
            )
        ).scalar_one()
        days = conn.execute(text("SELECT count(*) FROM record_days")).scalar_one()
    assert exact == days and uncovered_rows(engine) == []


def test_a_resumed_search_reads_only_the_months_of_its_stretch(engine: Engine) -> None:
    """Records submitted month after month, as a server stores them: a resumed step over the second
    month's stretch of seq runs none of the other months' partitions, and finds what the scan finds."""
    ids = put_texts(
        engine, [f"Record {i}: a {'nurse' if i % 4 == 1 else 'pilot'} at work." for i in range(90)]
    )
    submit_in(engine, ids, [MONTHS[i // 30] for i in range(90)])
    with engine.connect() as conn:
        seqs = list(conn.execute(text("SELECT seq FROM record_store ORDER BY seq")).scalars())
    query = store.records_query(status="approved", columns=["id", "text"], q="nurse", limit=20)
    search_ = seq_search.SeqSearch(21, walking=True)
    search_.step, search_.resume = "resume", seq_search.Resume(seqs[30], seqs[55])
    sql, params = store.step_sql(engine.dialect, query, search_)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        rows = conn.exec_driver_sql(sql, params).fetchall()
        explain = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)]
    expected = [
        t for t in search(engine, "nurse", limit=100, indexed=False) if 30 < int(t.split()[1][:-1]) <= 55
    ]
    assert [orjson.loads(r[1])["text"] for r in rows] == expected and len(expected) == 6
    ran = {
        name
        for name in ("p2025_01", "p2025_02", "p2025_03")
        for line in explain
        if name in line and "never executed" not in line
    }
    assert ran == {"p2025_02"}, "\n".join(explain)


@pytest.mark.parametrize("order", ["by month", "interleaved"])
def test_resumed_searches_answer_as_the_scan_whatever_the_order_of_months(
    engine: Engine, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both searches resume after short walks over records whose months follow seq, or alternate with
    it (a restore, an import): every page is the scan's."""
    monkeypatch.setattr(seq_search, "PROBE_ROWS", 4)
    monkeypatch.setattr(seq_search, "RANGE_MARGIN", 1)
    monkeypatch.setattr(seq_search, "INDEX_MATCHES", 0)  # resume whenever the walk found something
    texts = [f"Record {i}: a {'nurse' if i % 3 == 1 else 'pilot'} at work." for i in range(60)]
    ids = put_texts(engine, texts)
    months = (
        [MONTHS[i // 20] for i in range(60)] if order == "by month" else [MONTHS[i % 3] for i in range(60)]
    )
    submit_in(engine, ids, months)
    for limit in (1, 2, 7):
        assert search(engine, "nurse", limit) == search(engine, "nurse", limit, indexed=False), limit
    monkeypatch.setattr(seq_search, "PROBE_ROWS", 0)
    expected = {d: word_search(engine, "nurse", d) for d in (False, True)}
    monkeypatch.setattr(seq_search, "PROBE_ROWS", 4)
    for descending in (False, True):
        assert word_search(engine, "nurse", descending) == expected[descending]
    assert expected[False] and expected[True]
