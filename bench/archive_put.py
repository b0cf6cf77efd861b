"""What a migration costs a PUT (by default 0006_archive: head against 0005_scale; `--before 0006_archive`
for 0007's trigram index), and what archiving a month takes, measured side by side.

PostgreSQL: `record_store` partitioned by month with a row trigger that claims each new record's key in
`record_keys` (0006) against the plain table with unique constraints (0005_scale); SQLite: the dedup
trigger over `archived_records` against none. Same records, same batches (store.put_records, 200 per
batch, the server's PUT path), one database per schema, alternated per round so machine load falls on
both alike. Then archive (verify + detach/delete) and restore one month of the head database.

Usage: nice -n 10 .venv/bin/python bench/archive_put.py [--records 20000] [--rounds 3] [--backends sqlite,postgres]
                                                        [--before REVISION] [--no-archive]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text, update

from server_load import Postgres
from vdata.core.records import Record
from vdata.server import archive, db, store
from vdata.server.db import record_store
from vdata.server.snapshot import make_settings, take_snapshot

BATCH = 200


def records(n: int, tag: str) -> list[Record]:
    return [
        Record(
            text=f"{tag} record {i}: the engineer and the nurse were both {i % 97} years into the job.",
            target="engineer",
            attribute="anyone",
            category=("gender", "race", "religion")[i % 3],
            strategy="targeted",
            provider="bench",
            model="none",
        )
        for i in range(n)
    ]


def new_db(backend: str, cluster_url: str | None, name: str, folder: Path, revision: str) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{folder / name}.sqlite3"
    else:
        assert cluster_url is not None
        admin = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = cluster_url.rsplit("/", 1)[0] + f"/{name}"
    engine = db.make_engine(url)
    if revision == "head":
        db.upgrade(engine)
    else:
        from alembic import command

        config = db.alembic_config(url)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    engine.dispose()
    return url


def put_rate(url: str, batch: list[Record]) -> float:
    engine = db.make_engine(url)
    started = time.perf_counter()
    for i in range(0, len(batch), BATCH):
        store.put_records(engine, batch[i : i + BATCH], "bench")
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(batch) / elapsed


def archive_month(url: str, folder: Path) -> tuple[int, float, float]:
    """Approve everything, date it to 2020-01, snapshot, then time archive and restore of 2020-01."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(record_store).values(
                status="approved", submitted_at="2020-01-15T00:00:00Z", moderated_at="2020-02-01T00:00:00Z"
            )
        )
    out = folder / f"snapshots-{engine.dialect.name}"
    take_snapshot(make_settings(db_url=url, out_dir=out, settle_s=0))
    started = time.perf_counter()
    result = archive.archive(engine, out, months=["2020-01"])
    archived_s = time.perf_counter() - started
    started = time.perf_counter()
    archive.restore(engine, "2020-01", out)
    restored_s = time.perf_counter() - started
    engine.dispose()
    return result.months[0].rows, archived_s, restored_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--before", default="0005_scale", help="revision to compare head with")
    parser.add_argument("--no-archive", action="store_true", help="only the PUT comparison")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="vdata-archive-bench-") as tmp:
        folder = Path(tmp)
        for backend in args.backends.split(","):
            pg = Postgres() if backend == "postgres" else None
            cluster_url = pg.start() if pg else None
            try:
                rates: dict[str, list[float]] = {args.before: [], "head": []}
                urls = {}
                for round_ in range(args.rounds):
                    for revision in rates:
                        name = f"bench_{revision.replace('_', '')}_{round_}".lower()
                        urls[revision] = new_db(backend, cluster_url, name, folder, revision)
                        rates[revision].append(put_rate(urls[revision], records(args.records, f"r{round_}")))
                before, after = (statistics.median(rates[r]) for r in (args.before, "head"))
                print(
                    f"{backend}: PUT {args.records:,} records in batches of {BATCH}, median of {args.rounds}: "
                    f"{args.before} {before:,.0f}/s, head {after:,.0f}/s, ratio head/{args.before} "
                    f"{after / before:.2f} (each round: {', '.join(f'{a / b:.2f}' for a, b in zip(rates['head'], rates[args.before], strict=True))})"
                )
                if args.no_archive:
                    continue
                rows, archived_s, restored_s = archive_month(urls["head"], folder)
                print(
                    f"{backend}: archive one month of {rows:,} records {archived_s:.2f} s, restore {restored_s:.2f} s"
                )
            finally:
                if pg:
                    pg.stop()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
