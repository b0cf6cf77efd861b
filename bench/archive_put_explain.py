"""Where a PostgreSQL PUT's time goes with migration 0006: EXPLAIN ANALYZE of 200-record batches.

Three fresh databases on one throw-away cluster: 0005_scale with the plain insert, 0006 with the plain
insert (the row trigger claims each key in `record_keys`), and 0006 with the PUT's own statement
(store._pg_insert_claimed: the keys claimed set-based, the trigger skipped). Prints the median time of
each plan node and trigger over the batches (the first few, while psycopg prepares, left out), the
three alternated so load falls on them alike.

Usage: nice -n 10 .venv/bin/python bench/archive_put_explain.py [--batches 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive_put import new_db, records
from server_load import Postgres
from vdata.server import db, store

BATCH = 200
WARM_UP = 5
NODE = re.compile(r"(Trigger \S+|Insert on \S+).*?(?:actual time=[\d.]+\.\.|time=)([\d.]+)")


class Capture:
    """Stands in for a connection to take the SQL and parameters a store function would send."""

    def exec_driver_sql(self, sql: str, params: dict[str, Any]) -> list[Any]:
        self.sql, self.params = sql, params
        return []


def statement(insert: Callable[[Any, list[dict[str, Any]]], set[str]]) -> Callable[..., tuple[str, Any]]:
    def build(rows: list[dict[str, Any]]) -> tuple[str, Any]:
        capture = Capture()
        insert(capture, rows)
        return capture.sql, capture.params

    return build


def explain(
    url: str, build: Callable[..., tuple[str, Any]], tag: str, batches: int, out: dict[str, list[float]]
) -> None:
    engine = db.make_engine(url)
    batch = records(BATCH * batches, f"{tag}-{os.urandom(4).hex()}")
    for b in range(batches):
        rows = [store._row_for(r, "bench", store.now_utc()) for r in batch[b * BATCH : (b + 1) * BATCH]]
        sql, params = build(rows)
        with engine.begin() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, TIMING ON) {sql}", params).scalars().all()
        if b >= WARM_UP:
            for line in plan:
                found = NODE.search(line)
                if found:
                    out.setdefault(f"{tag}: {found.group(1)}", []).append(float(found.group(2)))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    variants = {
        "0005 plain insert": ("0005_scale", statement(store._pg_insert_new)),
        "0006 plain insert (row trigger)": ("head", statement(store._pg_insert_new)),
        "0006 PUT statement (claimed keys)": ("head", statement(store._pg_insert_claimed)),
    }
    times: dict[str, list[float]] = {}
    pg = Postgres()
    cluster = pg.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            urls = {
                tag: new_db("postgres", cluster, f"explain_{i}", Path(tmp), revision)
                for i, (tag, (revision, _)) in enumerate(variants.items())
            }
            for _ in range(args.rounds):
                for tag, (_, build) in variants.items():
                    explain(urls[tag], build, tag, args.batches, times)
    finally:
        pg.stop()
    for name, values in times.items():
        print(f"{name:75s} median {statistics.median(values):6.2f} ms (n={len(values)})")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
