"""The moderation queue's costs: signature indexing rate, flags for one queue page, the grouped queue query.

.venv/bin/python bench/moderation_flags.py --records 20000                 # SQLite in a temp dir
.venv/bin/python bench/moderation_flags.py --records 20000 --db postgresql://USER@HOST/DB  # an empty database
"""

from __future__ import annotations

import argparse
import tempfile
import time

from vdata.core.records import parse_record
from vdata.server import db, flags, moderation_store, store
from vdata.server.settings import normalise_db_url

WORDS = [
    "nurse",
    "engineer",
    "doctor",
    "teacher",
    "pilot",
    "farmer",
    "lawyer",
    "chef",
    "artist",
    "coder",
    "baker",
    "driver",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="pending records to store first")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in a temporary dir)")
    args = parser.parse_args()
    url = normalise_db_url(args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    engine = db.make_engine(url)
    db.upgrade(engine)
    records = []
    for i in range(args.records):
        w = [WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5, 7)]
        text = f"The {w[0]} and the {w[1]} met {i} times; a {w[2]} can be a {w[3]} too, note {i * 7919 % 100003}."
        records.append(
            parse_record(
                {"text": text, "category": "gender", "strategy": "targeted", "provider": "b", "model": "m"}
            )
        )
    for start in range(0, len(records), 1000):
        outcome = store.put_records(engine, records[start : start + 1000], "bench")
        moderation_store.note_batch(engine, outcome.accepted, "bench")

    t = time.perf_counter()
    checks = flags.flagger()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    indexed = flags.index_signatures(engine, checks)
    index_rate = indexed / (time.perf_counter() - t)
    t = time.perf_counter()
    page = [r for b in moderation_store.pending_queue(engine, limit=200) for r in b.records]
    queue_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    flags.flag_records(engine, page, checks)
    flags_ms = (time.perf_counter() - t) * 1000
    print(
        f"{engine.dialect.name}: {args.records} pending records; checks loaded in {load_s:.1f} s; "
        f"indexing {index_rate:,.0f} records/s; grouped queue of 200 {queue_ms:.1f} ms; "
        f"flags for 200 {flags_ms:.0f} ms"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
