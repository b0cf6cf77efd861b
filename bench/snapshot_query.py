"""Whole-dataset SQL: the /v1/query GROUP BY aggregate of bench/server_load.py on SQLite (the live
engine) and on DuckDB over a snapshot's Parquet files (engine=snapshot), side by side; plus what taking
the snapshot costs (seconds, bytes) and what an incremental snapshot after 1% new approvals costs.

The records are written straight into a fresh SQLite server database (approved), then:
1. SQLite: `run_sqlite`, the code behind /v1/query on SQLite, with a generous time limit so that it
   finishes and can be timed (the server's default limit is 1 s).
2. `take_snapshot` of all records (zstd Parquet), then 1% more approvals and an incremental snapshot.
3. DuckDB: `run_duckdb`, the code behind /v1/query?engine=snapshot, over the latest snapshot.
Each query: median of --repeats runs (the first DuckDB run, cold, is reported too).

Usage: .venv/bin/python bench/snapshot_query.py [--records 1000000] [--repeats 3]
Target from issue 13: DuckDB answers the aggregate within the default 1 s limit at 10M records.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vdata.core.records import BASE_CATEGORIES
from vdata.server import db
from vdata.server.query import run_sqlite
from vdata.server.query_snapshot import latest_snapshot, run_duckdb
from vdata.server.snapshot import make_settings, take_snapshot

QUERY_SQL = (
    "SELECT category, strategy, COUNT(*) AS n, AVG(LENGTH(text)) AS mean_len FROM records GROUP BY 1, 2"
)
STRATEGIES = ("targeted", "general", "attributed", "simple", "loss_guided")
TARGETS = ("nurse", "engineer", "pilot", "teacher", "farmer", "surgeon", "lawyer", "cook")
ATTRIBUTES = ("brilliant", "careful", "kind", "decisive", "gentle", "ambitious", "patient", "bold")
APPROVED_AT = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T12:00:00Z"


def rows(start: int, n: int, approved_at: str, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for i in range(start, start + n):
        target, attribute = rng.choice(TARGETS), rng.choice(ATTRIBUTES)
        text = (
            f"Record {i}: the {target} from the {rng.choice(BASE_CATEGORIES)} group was {attribute} "
            f"and {rng.random():.6f} in every way that mattered to the people around them."
        )
        digest = f"{i:064x}"
        yield (
            digest[-16:],
            digest,
            text,
            target,
            attribute,
            BASE_CATEGORIES[i % len(BASE_CATEGORIES)],
            STRATEGIES[i % len(STRATEGIES)],
            None,
            "bench",
            f"model-{i % 4}",
            f"{i % 7:064x}",
            "{}",
            "2025-12-31T00:00:00Z",
            "0.1.0",
            "bench",
            "approved",
            "2025-12-31T00:00:00Z",
            approved_at,
        )


INSERT = (
    "INSERT INTO record_store (id, content_sha256, text, target, attribute, category, strategy, attributes, "
    "provider, model, prompt_sha256, params, created_at, vdata_version, contributor, status, submitted_at, "
    "moderated_at) VALUES (" + ", ".join("?" * 18) + ")"
)


def load(path: Path, start: int, n: int, approved_at: str) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    for chunk in range(start, start + n, 100_000):
        conn.executemany(INSERT, rows(chunk, min(100_000, start + n - chunk), approved_at, chunk))
        conn.commit()
    conn.close()
    return time.perf_counter() - started


def timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """(first run ms, median ms over `repeats`, last result)."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory(prefix="vdata-snapbench-") as tmp:
        base = Path(tmp)
        url = f"sqlite:///{base / 'server.sqlite3'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        load_s = load(base / "server.sqlite3", 0, n, APPROVED_AT)
        db_bytes = (base / "server.sqlite3").stat().st_size
        print(f"loaded {n:,} approved records into SQLite in {load_s:.1f} s ({db_bytes / 1e6:,.0f} MB)")

        first_ms, sqlite_ms, sqlite_result = timed(
            lambda: run_sqlite(str(base / "server.sqlite3"), QUERY_SQL, 600.0, 10_000), args.repeats
        )

        settings = make_settings(db_url=url, out_dir=base / "snaps", settle_s=0)
        t1 = datetime(2026, 1, 1, 6, tzinfo=UTC)
        started = time.perf_counter()
        full = take_snapshot(settings, now=t1)
        full_s = time.perf_counter() - started
        assert full is not None
        extra = max(1, n // 100)
        load(base / "server.sqlite3", n, extra, LATER)
        started = time.perf_counter()
        incremental = take_snapshot(settings, now=t1 + timedelta(days=1))
        incremental_s = time.perf_counter() - started
        assert incremental is not None
        added = [e for e in incremental["files"] if e["path"] in incremental["files_added"]]

        _, _, files = latest_snapshot(base / "snaps")
        duck_first, duck_ms, duck_result = timed(
            lambda: run_duckdb(files, QUERY_SQL, 600.0, 10_000), args.repeats
        )
        assert sum(r[2] for r in duck_result.rows) == n + extra
        assert sum(r[2] for r in sqlite_result.rows) == n

    print()
    print(f"GROUP BY aggregate over all records ({QUERY_SQL!r})")
    print(f"{'engine':<34}{'records':>12}{'first ms':>11}{'median ms':>11}")
    print(f"{'SQLite (live, run_sqlite)':<34}{n:>12,}{first_ms:>11.0f}{sqlite_ms:>11.0f}")
    print(f"{'DuckDB over snapshot (run_duckdb)':<34}{n + extra:>12,}{duck_first:>11.0f}{duck_ms:>11.0f}")
    print(
        f"ratio SQLite / DuckDB (median): {sqlite_ms / duck_ms:.1f}x; within the 1 s limit: DuckDB "
        f"{'yes' if duck_ms < 1000 else 'no'}, SQLite {'yes' if sqlite_ms < 1000 else 'no'}"
    )
    print()
    print(
        f"full snapshot: {full['rows']:,} rows, {len(full['files'])} files, {full['bytes'] / 1e6:,.1f} MB "
        f"(SQLite file {db_bytes / 1e6:,.0f} MB) in {full_s:.1f} s ({full['rows'] / full_s:,.0f} rows/s)"
    )
    print(
        f"incremental snapshot after {extra:,} new approvals: wrote {len(added)} files, "
        f"{sum(e['bytes'] for e in added) / 1e6:,.2f} MB, in {incremental_s:.1f} s "
        f"(the other {len(incremental['files']) - len(added)} files hard-linked)"
    )


if __name__ == "__main__":
    main()
