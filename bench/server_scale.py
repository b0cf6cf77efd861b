"""The server at volume: the same reads and writes at several table sizes (e.g. 100,000 and 1,000,000
records), SQLite and PostgreSQL side by side, and the /v1/query aggregate on DuckDB over a snapshot.

For each size and backend:
1. A fresh database at the newest migration, bulk-loaded with realistic records (the sentences of the
   Han et al. 2024 synthetic debiasing sets over their category vocabularies, one of several
   continuations each, realistic metadata: 9 categories, 5 strategies, providers, models, parameters,
   contributors, submitted in record order over two years; ~95% approved, 3% pending, 2% rejected). PostgreSQL:
   COPY; SQLite: executemany in large transactions. Every trigger (full-text index, counts) runs.
   Reported: load time, table + index size.
2. The server (its own process, as bench/server_load.py) and 32 keep-alive clients, closed loop, for
   --seconds per read: GET first page, deep keyset page (90% into the table), filtered page (category
   and strategy), full-text search (/records?q=, the pages' FTS5 / tsvector search), the API's substring
   search (/v1/records?q=: a frequent word, a record's number, a made-up word in one record), a /records
   page with its facet counts, /v1/stats. p50/p99 and req/s.
3. PUT: batches of 100 records of which 10 are already stored (dedup), 4 clients: records/s, each on
   a server of its own once its start-up counts are done, with the contribution gate off (the PUT path
   alone: `put_records_s`) and on (`put_gate_on_records_s`: its worker makes a report on every batch
   after the response, on the same cores; first primed with one batch, `gate_start_s` to its report).
4. The /v1/query GROUP BY aggregate (median of --repeats sequential runs) on the live database, and
   (SQLite run) on DuckDB over a snapshot of the same records (time to take the snapshot reported).

The last table puts each size beside the first: targets read p99 within 2x, PUT within 1.5x.

Usage: nice -n 10 .venv/bin/python bench/server_scale.py --records 100000,1000000 [--backends sqlite,postgres]
PostgreSQL with docs/deploy.md's memory settings, a loaded cluster kept for later runs:
    ... --backends postgres --pg-settings deploy --pg-keep /tmp/pgk
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import importlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import DEPLOY_SETTINGS, Postgres, ServerProcess, get_load, put_all
from vdata.core.records import BASE_CATEGORIES
from vdata.server import db, partitions, store

# The statements migration 0005 fills the count tables with (the module name starts with a digit).
COUNT_FILL: list[str] = importlib.import_module("vdata.server.migrations.versions.0005_scale").FILL

QUERY_SQL = (
    "SELECT category, strategy, COUNT(*) AS n, AVG(LENGTH(text)) AS mean_len FROM records GROUP BY 1, 2"
)
RATIO_KEYS = ("put_records_s", "put_gate_on_records_s", "query_live_ms", "query_duckdb_ms")
STRATEGIES = ("targeted", "general", "attributed", "simple", "loss_guided")
PROVIDERS = (
    ("openai", "gpt-4o-mini"),
    ("gemini", "gemini-2.0-flash"),
    ("local", "smollm2-135m"),
    ("hf", "llama-3.1-8b"),
)
CONTINUATIONS = (
    "",
    " Nobody in the room found that surprising.",
    " Colleagues from {place} said the same about {word}.",
    " It is what anyone who met them would expect, whatever their {category}.",
    " The report from {place} described {word} the same way.",
    " Years later, people still talked about it.",
)
PLACES = (
    "Lagos",
    "Lyon",
    "Osaka",
    "Lima",
    "Pune",
    "Leeds",
    "Cairo",
    "Quito",
    "Perth",
    "Hanoi",
    "Oslo",
    "Tulsa",
)
COLUMNS = (
    "id, content_sha256, text, target, attribute, category, strategy, attributes, provider, model, "
    "prompt_sha256, params, created_at, vdata_version, contributor, status, submitted_at, moderated_at"
)


# Every RARE_EVERY-th record also names someone with a made-up word (`rare_word`): a string in one record
# whose trigrams are rare, unlike the record numbers (`#5000003)`), every trigram of which is common.
# Those records are approved, so the search finds its one record.
RARE_EVERY = 50_000
FIRST_DAY = datetime.date(2024, 1, 1)


def rare_word(i: int) -> str:
    """Eight letters drawn from a hash of the record number: almost surely in no other record."""
    return "".join(chr(97 + b % 26) for b in hashlib.sha256(f"rare-{i}".encode()).digest()[:8])


def templates() -> list[tuple[str, str, str, str]]:
    """(sentence, target, attribute, category) from the Han et al. synthetic sets in the data dir."""
    root = Path(os.environ.get("VDATA_DATA_DIR") or "/work/shared/benchmarks") / "han2024-synthetic"
    categories = {"Gender": "gender", "Racial": "race", "Religion": "religion"}
    found: list[tuple[str, str, str, str]] = []
    for path in sorted(root.glob("*/*/*S.json")) + sorted(root.glob("General_Debiasing/*S.json")):
        category = categories.get(path.parent.name, "")
        for sentence, target, attribute in json.loads(path.read_text(encoding="utf-8")):
            found.append((sentence, target, attribute, category))
    if not found:
        raise SystemExit(f"no Han et al. sentences under {root}; set VDATA_DATA_DIR")
    return found


def record_rows(n: int, seed: int = 0, start: int = 0) -> Iterator[tuple[Any, ...]]:
    """n stored rows (record_store's columns in COLUMNS order), each text unique."""
    rng = random.Random(seed)
    base = templates()
    words = [w for s, _, _, _ in base for w in s.lower().rstrip(".").split()[1:3]]
    for i in range(start, start + n):
        sentence, target, attribute, category = base[i % len(base)]
        category = category or BASE_CATEGORIES[(i // len(base)) % len(BASE_CATEGORIES)]
        tail = CONTINUATIONS[(i // 7) % len(CONTINUATIONS)].format(
            place=rng.choice(PLACES), word=rng.choice(words), category=category
        )
        named = f"{rare_word(i)}, " if i % RARE_EVERY == 0 else ""
        text = f"{sentence}{tail} ({named}#{i})"
        digest = store.content_sha256(text)
        provider, model = PROVIDERS[i % len(PROVIDERS)]
        roll = rng.random()
        status = "approved" if roll < 0.95 or named else "pending" if roll < 0.98 else "rejected"
        # Submitted in record order over two years, as a server stores contributions (seq and submitted_at
        # both set at the PUT): each month's partition holds a stretch of seq. Generated the same day.
        day = FIRST_DAY + datetime.timedelta(days=(i - start) * 730 // n)
        created = f"{day.isoformat()}T{i % 24:02d}:00:00Z"
        yield (
            digest[:16],
            digest,
            text,
            target,
            attribute,
            category,
            STRATEGIES[i % len(STRATEGIES)],
            None,
            provider,
            model,
            f"{i % 40:064x}",
            json.dumps({"temperature": round(0.5 + (i % 6) / 10, 1), "max_tokens": 64}),
            created,
            "0.4.0",
            f"contributor-{i % 500}",
            status,
            created,
            None if status == "pending" else created,
        )


def load_sqlite(path: Path, n: int, chunk: int = 100_000) -> None:
    """executemany in transactions of `chunk` rows, with the secondary indexes and triggers (full-text
    index, counts) set aside and rebuilt once at the end, as a restore would: the same end state."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: index builds sort in memory
    aside = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'record_store' AND sql IS NOT NULL "
        "AND type IN ('index', 'trigger')"
    ).fetchall()
    for kind, name, _ in aside:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    sql = f"INSERT INTO record_store ({COLUMNS}) VALUES ({', '.join('?' * 18)})"
    rows = record_rows(n)
    while True:
        batch = [r for _, r in zip(range(chunk), rows, strict=False)]
        if not batch:
            break
        with conn:
            conn.executemany(sql, batch)
    with conn:
        for _, _, statement in aside:
            conn.execute(statement)
        conn.execute("INSERT INTO records_fts(records_fts) VALUES ('rebuild')")
        conn.execute("INSERT INTO records_trgm(records_trgm) VALUES ('rebuild')")
        for statement in COUNT_FILL:
            conn.execute(statement)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def load_postgres(url: str, n: int) -> None:
    """COPY, with the full-text and trigram GIN indexes built once afterwards (the count triggers stay on)."""
    import psycopg

    gin = {
        "ix_record_store_text_tsv": "GIN (text_tsv)",
        "ix_record_store_text_trgm": "GIN (lower(text) gin_trgm_ops)",  # migration 0007
    }
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for name in gin:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cur, cur.copy(f"COPY record_store ({COLUMNS}) FROM STDIN") as copy:
            for row in record_rows(n):
                copy.write_row(row)
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, how in gin.items():
            conn.execute(f"CREATE INDEX {name} ON record_store USING {how}")
        conn.execute("VACUUM ANALYZE record_store")


def size_gb(engine: Any, path: Path | None) -> tuple[float, float, float]:
    """(table GB, index GB, of which migration 0007's trigram index): PostgreSQL from its size functions;
    SQLite from dbstat (tables vs indexes; the trigram index is an FTS5 table, so counted in "table")."""
    from sqlalchemy import text

    with engine.connect() as conn:
        if path is None:
            # record_store is partitioned by month (0006_archive): its own size functions say 0, so sum
            # its partitions; record_keys (the global unique keys) belongs to it too.
            table, index = conn.execute(
                text(
                    "SELECT SUM(pg_table_size(relid)), SUM(pg_indexes_size(relid)) "
                    "FROM (SELECT relid FROM pg_partition_tree('record_store') "
                    "      UNION ALL SELECT 'record_keys'::regclass) AS parts"
                )
            ).one()
            table += conn.execute(text("SELECT pg_total_relation_size('record_counts')")).scalar_one()
            trigram = conn.execute(
                text(
                    "SELECT COALESCE(SUM(pg_relation_size(indexrelid::regclass)), 0) FROM pg_index "
                    "WHERE pg_get_indexdef(indexrelid) LIKE '%gin_trgm_ops%'"
                )
            ).scalar_one()
            return float(table) / 1e9, float(index) / 1e9, float(trigram) / 1e9
    con = sqlite3.connect(path)
    try:
        sizes = dict(
            con.execute(
                "SELECT CASE WHEN s.name LIKE 'records_trgm%' THEN 'trigram' "
                "WHEN m.type = 'index' THEN 'index' ELSE 'table' END, SUM(s.pgsize) "
                "FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1"
            ).fetchall()
        )
        sizes["table"] = sizes.get("table", 0) + sizes.get("trigram", 0)
    except sqlite3.OperationalError:  # no dbstat in this SQLite build: the whole file
        sizes = {"table": path.stat().st_size, "index": 0}
    finally:
        con.close()
    return sizes.get("table", 0) / 1e9, sizes.get("index", 0) / 1e9, sizes.get("trigram", 0) / 1e9


def read_paths(n: int) -> dict[str, list[str]]:
    deep = store.encode_cursor(int(n * 0.9))
    return {
        "get_first_page": ["/v1/records?limit=20"],
        "get_deep_page": [f"/v1/records?limit=20&cursor={deep}"],
        "get_filtered_page": [
            f"/v1/records?limit=20&category={c}&strategy={s}"
            for c in ("gender", "race", "religion")
            for s in STRATEGIES
        ],
        "search_fulltext": [f"/records?format=json&q={w}" for w in ("nurse", "engineer", "mosque", "stoic")],
        "search_api_substring": [
            f"/v1/records?limit=20&q={w}" for w in ("nurse", "engineer", "mosque", "stoic")
        ],
        # A substring in one record only: before migration 0007's trigram index the LIKE walk read every
        # approved row; now the index finds the candidates.
        "search_api_rare": [f"/v1/records?limit=20&q=%23{n // 2 + k})" for k in range(8)],
        # The same in one record, but a word with rare trigrams (a name, a typo): the index reads little.
        "search_api_rare_word": [f"/v1/records?limit=20&q={rare_word(n // 2 // RARE_EVERY * RARE_EVERY)}"],
        "facets_page": [f"/records?category={c}" for c in ("gender", "race", "religion", "age")],
        "stats": ["/v1/stats"],
    }


def unused_numbers() -> int:
    """The first record number of a PUT run: new texts (each ends in its number) that no load and no
    earlier run on a kept cluster has used. Loads number from 0; runs draw a start at random far above."""
    return random.SystemRandom().randrange(10**10, 10**12)


def prewarm_write_path(url: str) -> None:
    """Read into shared buffers what a PUT writes to, where a running server has it: the key index (each
    of a PUT's keys lands on a random leaf page: the keys are hashes) and the indexes of the monthly
    partitions, where new records go (their GIN pending lists are merged into the GIN index when full).
    The bench starts the cluster cold: at 10^7 rows the first minutes of PUTs would otherwise read these
    from disk page by page. Deployments keep the buffers over restarts with pg_prewarm's autoprewarm
    (docs/deploy.md)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute("SELECT pg_prewarm('record_keys_pkey')")
        conn.execute(
            "SELECT pg_prewarm(i.indexrelid) FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhrelid "
            "JOIN pg_index i ON i.indrelid = p.oid "
            "WHERE h.inhparent = 'record_store'::regclass AND p.relname <> 'record_store_default'"
        )


def wait_for_warm_counts(url: str) -> None:
    """Return once the server's start-up counts are done: at start it computes the home page's and the
    unfiltered /records counts in the background (its months and the contributor facet group every
    approved row: seconds at 10^7 rows), and a first reader waits for that computation. Measured
    without this (and before those counts read the count tables for category, strategy and provider),
    the PUTs of a just-started server shared the cores and the disk with them: at 10^7 rows 2 blocks
    read per stored record from each of the large partition's (status, category) and (status, strategy)
    indexes."""
    with httpx.Client(base_url=url, timeout=600) as client:
        for path in ("/", "/records"):
            client.get(path).raise_for_status()


def set_aside_queued_reports(engine: Any) -> int:
    """Mark the reports an earlier run left queued (a kept cluster's: runs stopped before the gate got to
    them) as failed, so that a gate-on run starts with no queue, as on a fresh cluster; returns how many.
    Measured without this, a 10^7 cluster's gate first worked through 4,483 such batches (about 37 min)."""
    from sqlalchemy import update

    from vdata.server.moderation_store import contribution_report

    with engine.begin() as conn:
        return conn.execute(
            update(contribution_report)
            .where(contribution_report.c.status.in_(("pending", "running")))
            .values(status="failed", error="set aside by bench/server_scale.py: left by an earlier run")
        ).rowcount


def prime_gate(url: str, timeout_s: float = 600) -> float:
    """PUT one record and wait for the gate's report on it; returns the seconds that took. The gate's
    worker starts with the first batch and first profiles the public (approved) records, and before a
    report it indexes the signatures of every record stored without them (a bulk load's: at 10^7
    records that takes hours, and TimeoutError says so)."""
    record = _as_record(next(record_rows(1, seed=2, start=unused_numbers())))
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as client:
        put = client.put("/v1/records", json=[record])
        put.raise_for_status()
        batch = put.json()["contribution"]["url"]
        while client.get(batch).json()["report"]["status"] in ("pending", "running"):
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(
                    f"the gate made no report on {batch} in {timeout_s:.0f} s (still indexing the "
                    "signatures of bulk-loaded records?)"
                )
            time.sleep(1)
    return time.perf_counter() - t0


def wait_until_idle(db_url: str, quiet_s: float = 2.0, timeout_s: float = 900) -> None:
    """Return once no other PostgreSQL session has run a statement for `quiet_s`. A server started more
    than 30 s (its count cache's lifetime) before its first page read recomputes its page counts in the
    background when `wait_for_warm_counts` reads them: at 10^7 rows the home page's months and the
    contributor facet group every approved row, seconds of CPU and GBs read through the buffers. Measured
    without this wait, that recount ran during the gate-on PUT run (the gate's start takes minutes at
    10^7) and halved it (3,460 against 7,186 records/s gate off)."""
    import psycopg

    quiet_since = time.monotonic()
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        t0 = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s and time.monotonic() - t0 < timeout_s:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchone()
            if busy and busy[0]:
                quiet_since = time.monotonic()
            time.sleep(0.2)


def put_with_dedup(url: str, n: int, start: int, puts: int, db_url: str | None = None) -> float:
    """records/s of PUT batches of 100: 90 new records and 10 already stored (answered as duplicates)."""
    wait_for_warm_counts(url)
    if db_url is not None:
        wait_until_idle(db_url)
    new = [_as_record(r) for r in record_rows(puts * 90, seed=1, start=start)]
    old = [_as_record(r) for r in record_rows(puts * 10, seed=0, start=0)]
    records = [x for b in range(puts) for x in (*new[b * 90 : (b + 1) * 90], *old[b * 10 : (b + 1) * 10])]
    seconds, accepted, duplicates = asyncio.run(put_all(url, records))
    assert accepted == len(new) and duplicates == len(old), (accepted, duplicates)
    return len(records) / seconds


def _as_record(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "text": row[2],
        "target": row[3],
        "attribute": row[4],
        "category": row[5],
        "strategy": row[6],
        "provider": row[8],
        "model": row[9],
        "params": json.loads(row[11]),
        "created_at": row[12],
    }


def timed_queries(run: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(backend: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="vdata-scale-"))
    pg = None
    if backend == "postgres":
        keep = Path(args.pg_keep) / f"{n}" if args.pg_keep else None
        pg = Postgres(keep=keep, settings=DEPLOY_SETTINGS if args.pg_settings == "deploy" else None)
    try:
        url = pg.start() if pg else f"sqlite:///{work / 'server.sqlite3'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        loaded = pg.base / "loaded.json" if pg and pg.keep else None
        if loaded is not None and pg is not None and pg.reused and loaded.exists():
            figures.update(json.loads(loaded.read_text(encoding="utf-8")))
            print(f"{backend} {n:,}: reusing the cluster loaded in {figures['load_s']:.0f} s", flush=True)
        else:
            t0 = time.perf_counter()
            if pg:
                with engine.begin() as conn:  # the months' partitions a server running for two years has
                    for month in sorted(
                        {f"{FIRST_DAY + datetime.timedelta(days=d):%Y-%m}" for d in range(730)}
                    ):
                        partitions.ensure_partition(conn, month)
                load_postgres(url, n)
            else:
                load_sqlite(work / "server.sqlite3", n)
            figures["load_s"] = time.perf_counter() - t0
            figures["table_gb"], figures["index_gb"], figures["substring_index_gb"] = size_gb(
                engine, None if pg else work / "server.sqlite3"
            )
            if loaded is not None:
                loaded.write_text(json.dumps(figures), encoding="utf-8")
            print(
                f"{backend} {n:,}: loaded in {figures['load_s']:.0f} s (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        server = ServerProcess(url)
        try:
            if "reads" in args.phases:  # as on a running server: its start-up counts done (see PUT below)
                wait_for_warm_counts(server.url)
                if pg:
                    wait_until_idle(url)
            for name, paths in read_paths(n).items() if "reads" in args.phases else ():
                asyncio.run(get_load(server.port, 1.0, args.clients, paths))  # warm-up (caches, pages)
                count, errors, lat = asyncio.run(get_load(server.port, args.seconds, args.clients, paths))
                lat_ms = sorted(x * 1000 for x in lat)
                figures[f"{name}_p50_ms"] = lat_ms[len(lat_ms) // 2]
                figures[f"{name}_p99_ms"] = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
                figures[f"{name}_req_s"] = count / args.seconds
                if errors:
                    figures[f"{name}_errors"] = errors
            if "query" in args.phases:
                figures.update(live_query_figures(server.url, url, args.repeats))
        finally:
            server.stop()
        if "put" in args.phases:
            if pg:
                prewarm_write_path(url)
            # Each on a server of its own, once its start-up work is done, as on a running server. Gate
            # off: the PUT path alone. Gate on: its worker reports on every batch after the response, on
            # the same cores (primed first: its start profiles every approved record).
            for key, gate in (("put_records_s", "off"), ("put_gate_on_records_s", "on")):
                server = ServerProcess(url, gate=gate)
                try:
                    if gate == "on":
                        figures["gate_reports_set_aside"] = set_aside_queued_reports(engine)
                        try:
                            figures["gate_start_s"] = prime_gate(server.url, args.gate_wait)
                        except TimeoutError as e:
                            print(f"{backend} {n:,}: gate-on PUT not measured: {e}", flush=True)
                            continue
                        if pg:  # the gate's start read every approved row through the buffers
                            prewarm_write_path(url)
                    figures[key] = put_with_dedup(
                        server.url, n, unused_numbers(), args.puts, url if pg else None
                    )
                finally:
                    server.stop()
        if not pg and "query" in args.phases:
            figures.update(duckdb_figures(url, work, args.repeats))
        engine.dispose()
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return figures


def live_query_figures(server_url: str, db_url: str, repeats: int) -> dict[str, float]:
    """The aggregate through /v1/query; when the server refuses it (its 1 s limit), the same code it
    runs (query.run_sqlite / run_postgres), called directly without that limit, says how long it takes."""
    from vdata.server.query import run_postgres, run_sqlite

    with httpx.Client(base_url=server_url, timeout=120) as client:
        answer = client.get("/v1/query", params={"sql": QUERY_SQL})
        if answer.status_code == 200:

            def live() -> None:
                client.get("/v1/query", params={"sql": QUERY_SQL}).raise_for_status()

            return {"query_live_ms": timed_queries(live, repeats)}
    if "limit" not in answer.text:
        answer.raise_for_status()
    engine = db.make_engine(db_url)
    try:
        if engine.dialect.name == "sqlite":
            path = engine.url.database or ""
            ms = timed_queries(lambda: run_sqlite(path, QUERY_SQL, 600, 10_000), repeats)
        else:
            ms = timed_queries(
                lambda: run_postgres(engine.raw_connection, QUERY_SQL, 600, 10_000, None), repeats
            )
    finally:
        engine.dispose()
    return {"query_live_ms": ms, "query_live_refused_at_1s": 1.0}


def duckdb_figures(url: str, work: Path, repeats: int) -> dict[str, float]:
    from vdata.server.query_snapshot import latest_snapshot, run_duckdb
    from vdata.server.snapshot import make_settings, take_snapshot

    t0 = time.perf_counter()
    take_snapshot(make_settings(db_url=url, out_dir=work / "snapshots", settle_s=0))
    out = {"snapshot_s": time.perf_counter() - t0}
    files = latest_snapshot(work / "snapshots")[2]
    out["query_duckdb_ms"] = timed_queries(lambda: run_duckdb(files, QUERY_SQL, 60, 10_000), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", default="100000,1000000", help="table sizes, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per read endpoint")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--puts", type=int, default=200, help="PUT batches of 100 (10 duplicates each)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the /v1/query aggregate")
    parser.add_argument("--json", help="also write the figures to this file, after each run")
    parser.add_argument(
        "--phases",
        default="reads,put,query",
        type=lambda v: set(v.split(",")),
        help="which of reads, put (gate off and on), query to measure, comma-separated",
    )
    parser.add_argument(
        "--gate-wait",
        type=float,
        default=600,
        help="seconds to wait for the gate's first report before a gate-on PUT run (it first indexes the "
        "signatures of every record stored without them: a bulk load's; on a kept cluster once)",
    )
    parser.add_argument(
        "--pg-settings",
        choices=("stock", "deploy"),
        default="stock",
        help="PostgreSQL's stock settings, or docs/deploy.md's memory and planner settings",
    )
    parser.add_argument(
        "--pg-keep",
        help="keep each PostgreSQL cluster under DIR/<records> and reuse it when a later run asks for that size",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.records.split(",")]
    print(
        f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (other work shares the cores)"
    )
    results: dict[tuple[str, int], dict[str, float]] = {}
    for backend in args.backends.split(","):
        for n in sizes:
            t0 = time.perf_counter()
            results[backend, n] = measure(backend, n, args)
            if args.json:  # kept as each run ends: a long run that fails later loses nothing
                Path(args.json).write_text(
                    json.dumps({f"{b} {k}": v for (b, k), v in results.items()}, indent=1), encoding="utf-8"
                )
            print(
                f"{backend} {n:,}: done in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    keys = list(dict.fromkeys(k for figures in results.values() for k in figures))
    columns = list(results)
    print(f"{'metric':<30}" + "".join(f"{f'{b} {n:,}':>20}" for b, n in columns))
    for key in keys:
        print(f"{key:<30}" + "".join(f"{results[c].get(key, float('nan')):>20.3f}" for c in columns))
    print("\nratio of each size to the first (targets: read p99 <= 2.00x, PUT records/s >= 0.67x)")
    for backend in args.backends.split(","):
        small = results[backend, sizes[0]]
        for n in sizes[1:]:
            big = results[backend, n]
            compared = [k for k in keys if k.endswith("_p99_ms") or k in RATIO_KEYS]
            for key in (k for k in compared if small.get(k) and k in big):
                ratio = big[key] / small[key]
                if key.endswith("_p99_ms"):
                    verdict = "ok" if ratio <= 2.0 else "OVER"
                elif key in ("put_records_s", "put_gate_on_records_s"):
                    verdict = "ok" if ratio >= 1 / 1.5 else "UNDER"
                else:
                    verdict = ""
                print(f"  {backend:<9} {n:>11,} / {sizes[0]:,}  {key:<30} {ratio:6.2f}x {verdict}")


if __name__ == "__main__":
    main()
