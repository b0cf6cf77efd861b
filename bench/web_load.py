"""Load benchmark of the reader pages beside the JSON API for the same result, SQLite and PostgreSQL.

N approved records (default 1,000,000) are loaded straight into the store (migrated to 0001 first, the
pages' indexes and full-text index built afterwards by the server's own migration at start, as on an
upgrade). The server runs in its own process (uvicorn, one worker); 16 concurrent keep-alive readers
(bench/server_load.py's minimal asyncio client) ask for one scenario at a time, for --seconds each, and
the latency of each answer is measured on loopback: p50 and p99 per scenario, HTML page and JSON API.

Scenarios: /records first page; page 10,000 of 50 rows (the deepest page when N is smaller) by keyset
cursor; a filtered page (category + strategy); a search (words); the facet counts (served from the pages' 30 s count cache; a cold computation is timed separately, once per
backend); `/` (home). JSON twins: /v1/records with the same filter and cursor, /v1/records?q (a substring
filter: the API's search), /v1/query GROUP BY (the facets), /v1/stats (home).

Usage: .venv/bin/python bench/web_load.py [--records 1000000] [--seconds 5] [--backends sqlite,postgres]
Targets (issue 12): p99 <= 150 ms for table pages and search, <= 300 ms for facets and home, the deep
page within 1.5x of the first page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

# bench/server_load.py: the throw-away PostgreSQL cluster, the server process and the load client.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import Postgres, ServerProcess, get_load

CATEGORIES = (
    "gender",
    "race",
    "religion",
    "age",
    "disability",
    "nationality",
    "socioeconomic",
    "sexual-orientation",
    "physical-appearance",
)
STRATEGIES = ("targeted", "general", "attributed", "simple", "loss_guided")
PROVIDERS = ("openai", "gemini", "local", "llamacpp")
WORDS = ("nurse", "engineer", "pilot", "teacher", "surgeon", "farmer", "judge", "chef")
ADJECTIVES = ("brilliant", "careful", "kind", "decisive", "patient", "bold", "quiet", "funny")
PAGE = 50
CLIENTS = 16
TABLE_TARGET_MS, COUNTS_TARGET_MS, DEEP_RATIO_TARGET = 150.0, 300.0, 1.5


def load_records(db_url: str, n: int, chunk: int = 50_000) -> None:
    """N approved records straight into record_store at schema 0001 (what a server a year old holds)."""
    from alembic import command
    from sqlalchemy import insert

    from vdata.server import db
    from vdata.server.store import content_sha256

    engine = db.make_engine(db_url)
    config = db.alembic_config(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    rng = random.Random(0)
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            rows: list[dict[str, Any]] = []
            for i in range(start, min(n, start + chunk)):
                text = (
                    f"Record {i}: the {rng.choice(WORDS)} was {rng.choice(ADJECTIVES)} "
                    f"and {rng.choice(ADJECTIVES)} in every way ({rng.random():.6f})."
                )
                month = 1 + i * 24 // n  # two years of contributions, growing in order
                day = f"{2025 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-{1 + i % 28:02d}"
                sha = content_sha256(text)
                rows.append(
                    {
                        "id": sha[:16],
                        "content_sha256": sha,
                        "text": text,
                        "target": rng.choice(WORDS),
                        "attribute": rng.choice(ADJECTIVES),
                        "category": CATEGORIES[i % len(CATEGORIES)],
                        "strategy": STRATEGIES[i % len(STRATEGIES)],
                        "attributes": None,
                        "provider": PROVIDERS[i % len(PROVIDERS)],
                        "model": "synthetic",
                        "prompt_sha256": "0" * 64,
                        "params": "{}",
                        "created_at": f"{day}T12:00:00Z",
                        "vdata_version": "0.1.0",
                        "contributor": f"contributor-{i % 997}",
                        "status": "approved",
                        "submitted_at": f"{day}T12:00:00Z",
                        "moderated_at": f"{day}T13:00:00Z",
                    }
                )
            conn.execute(insert(db.record_store), rows)
    engine.dispose()


def analyze(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE record_store"))
    engine.dispose()


def cold_facets_ms(db_url: str) -> float:
    """One facet computation over every approved record, without the cache: what a cache miss costs."""
    from vdata.server import browse, db

    engine = db.make_engine(db_url)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        browse.facet_counts(engine, browse.Filters())
        times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return sorted(times)[1]


def scenarios(n: int) -> list[tuple[str, list[str], list[str], float]]:
    """(name, HTML paths, JSON paths, p99 target ms)."""
    from vdata.server import browse, store

    # seq runs 1..N in load order: page 10,000 starts after row 499,950 (the deepest page when N is smaller).
    deep_seq = min((10_000 - 1) * PAGE, n - PAGE)
    deep = browse.encode_cursor(deep_seq, deep_seq)
    searches = ["pilot brilliant", "surgeon quiet", "judge", "nurse funny"]
    return [
        ("first page", ["/records"], [f"/v1/records?limit={PAGE}"], TABLE_TARGET_MS),
        (
            f"page {deep_seq // PAGE + 1:,}",
            [f"/records?after={deep}"],
            [f"/v1/records?limit={PAGE}&cursor={store.encode_cursor(deep_seq)}"],
            TABLE_TARGET_MS,
        ),
        (
            "filtered page",
            ["/records?category=gender&strategy=targeted"],
            [f"/v1/records?limit={PAGE}&category=gender&strategy=targeted"],
            TABLE_TARGET_MS,
        ),
        (
            "search",
            ["/records?" + urlencode({"q": q}) for q in searches],
            [f"/v1/records?limit={PAGE}&" + urlencode({"q": q}) for q in searches],
            TABLE_TARGET_MS,
        ),
        (
            "facet counts",
            ["/records?limit=25"],
            [
                "/v1/query?"
                + urlencode({"sql": "SELECT category, COUNT(*) AS n FROM records GROUP BY category"})
            ],
            COUNTS_TARGET_MS,
        ),
        ("home", ["/"], ["/v1/stats"], COUNTS_TARGET_MS),
    ]


def measure(server: ServerProcess, paths: list[str], seconds: float) -> tuple[float, float, int, int, float]:
    """(p50 ms, p99 ms, requests, errors, server CPU ms per request) of `paths` at CLIENTS readers."""
    asyncio.run(get_load(server.port, min(1.0, seconds), CLIENTS, paths))  # warm-up: connections, caches
    cpu0 = server.cpu_seconds()
    count, errors, lat = asyncio.run(get_load(server.port, seconds, CLIENTS, paths))
    cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / max(count, 1)
    ms = sorted(x * 1000 for x in lat)
    return ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))], count, errors, cpu_ms


def run_backend(backend: str, db_url: str, n: int, seconds: float) -> list[str]:
    t0 = time.perf_counter()
    load_records(db_url, n)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    server = ServerProcess(db_url)  # migrates to head: the pages' indexes and the full-text index
    migrated = time.perf_counter() - t0
    if backend == "postgres":
        # What autovacuum does after a bulk load; without statistics the planner guesses row counts.
        analyze(db_url)
    lines = [
        f"{backend}: {n:,} records loaded in {loaded:.0f} s, migration 0003 in {migrated:.0f} s; "
        f"cold facet counts {cold_facets_ms(db_url):.0f} ms"
    ]
    first_p99 = None
    try:
        # The server computes the home page's and the unfiltered table's counts right after start; a
        # reader's first request waits for them. Measure from then on.
        t0 = time.perf_counter()
        for path in ("/", "/records"):
            httpx.get(server.url + path, timeout=600).raise_for_status()
        lines.append(f"  counts ready {time.perf_counter() - t0:.1f} s after start")
        for name, html, api, target in scenarios(n):
            h50, h99, hn, herr, hcpu = measure(server, html, seconds)
            j50, j99, jn, jerr, jcpu = measure(server, api, seconds)
            first_p99 = first_p99 or h99
            verdict = "ok" if h99 <= target else "OVER"
            extra = f"  ({h99 / first_p99:.2f}x first page)" if name.startswith("page ") else ""
            lines.append(
                f"  {name:<16} html p50 {h50:7.1f} p99 {h99:7.1f} ms, cpu {hcpu:5.2f} ms/req ({hn} req, {herr} err) | "
                f"json p50 {j50:7.1f} p99 {j99:7.1f} ms, cpu {jcpu:5.2f} ms/req ({jn} req, {jerr} err) | "
                f"target p99 <= {target:.0f}: {verdict}{extra}"
            )
            print(lines[-1], flush=True)
    finally:
        server.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(
        f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (other work shares the cores)"
    )
    report: list[str] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="vdata-web-bench-"))
            try:
                report += run_backend(
                    "sqlite", f"sqlite:///{tmp / 'server.sqlite3'}", args.records, args.seconds
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif backend == "postgres":
            pg = Postgres()
            try:
                report += run_backend("postgres", pg.start(), args.records, args.seconds)
            finally:
                pg.stop()
        else:
            raise SystemExit(f"unknown backend {backend!r}; use sqlite and/or postgres")
    print("\n".join(["", f"{CLIENTS} concurrent readers, latency on loopback:", *report]))


if __name__ == "__main__":
    main()
