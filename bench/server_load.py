"""Load benchmark of the public dataset server, on loopback, SQLite and PostgreSQL side by side.

The server runs in its own process (uvicorn, one worker); this process is the load generator.
Besides wall-clock rates it reports rates per CPU-second of the server process, which say what one
core would sustain even when, as on a shared CI machine, the server gets only part of a core.

1. PUT throughput: N records (default 100,000) in batches of 100 from 4 concurrent clients, then the
   first 10,000 again (all duplicates: the dedup path).
2. The records are approved by the operator (a direct UPDATE, as a moderator's bulk action would be).
3. GET /v1/records throughput and p50/p99 latency at 32 concurrent keep-alive clients, using a
   minimal asyncio HTTP/1.1 client so that the load generator costs as little CPU as possible.
4. A /v1/query aggregate over all N records (median of 10 runs).

Usage: .venv/bin/python bench/server_load.py [--records 100000] [--get-seconds 10] [--backends sqlite,postgres]
    [--gate on|off|compare]
Targets from issue 5: >= 2,000 GET/s with p99 <= 50 ms, >= 5,000 records/s on PUT.

--gate: the contribution gate (a report on every PUT batch, made by a worker process after the
response) on (the default of `vdata serve`) or off. `--gate compare` measures only PUT throughput, gate
off and on alternately on fresh databases for --rounds rounds, and prints the on/off ratio (target from
issue 14: >= 0.9x) and how long after the last PUT the gate had finished every report.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import pwd
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CATEGORIES = ("gender", "race", "religion", "age", "disability")
GET_TARGET_RPS, GET_TARGET_P99_MS, PUT_TARGET_RPS = 2000.0, 50.0, 5000.0
QUERY_SQL = (
    "SELECT category, strategy, COUNT(*) AS n, AVG(LENGTH(text)) AS mean_len FROM records GROUP BY 1, 2"
)

SERVER_CODE = """
import socket, sys, threading, time
from vdata.server.serve import configure_logging, make_server
from vdata.server.settings import ServerSettings
settings = ServerSettings(db_url=sys.argv[1], put_rate=1e6, put_burst=1_000_000, batch_size=1000,
                          moderator_token=None, gate=sys.argv[3] == "on",
                          auto_reject=("duplicates", "benchmark-overlap", "refusals"))
configure_logging()
# SO_REUSEPORT: several server processes share the port and the kernel spreads connections over them.
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[2])))
server = make_server(settings, "127.0.0.1", int(sys.argv[2]), access_log=False)
def announce():
    while not server.started:
        time.sleep(0.05)
    print("READY", flush=True)
threading.Thread(target=announce, daemon=True).start()
server.run(sockets=[sock])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------ PostgreSQL


class Postgres:
    """A throw-away cluster on loopback (as root the binaries run as the `postgres` user).

    `keep`: a folder that outlives the run; when it already holds a cluster, that cluster is started as it is
    (`reused` is then True), so a 10M-record table is loaded once for several runs. `settings`: extra
    `postgresql.conf` values, e.g. DEPLOY_SETTINGS."""

    def __init__(self, keep: Path | None = None, settings: dict[str, str] | None = None) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise FileNotFoundError("no PostgreSQL binaries; run scripts/install-postgres.sh")
        self.bin = Path(found[-1]).parent
        self.keep = keep is not None
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        self.base = keep if keep is not None else Path(tempfile.mkdtemp(prefix="vdata-bench-pg-"))
        self.reused = (self.base / "data" / "PG_VERSION").exists()
        self.settings = settings or {}
        self.port = free_port()
        (self.base / "sock").mkdir(exist_ok=True)
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for p in (self.base, self.base / "sock"):
                os.chown(p, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=600)

    def start(self) -> str:
        data = str(self.base / "data")
        if not self.reused:
            self._run(
                str(self.bin / "initdb"),
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            )
        opts = f"-p {self.port} -k {self.base / 'sock'} -c listen_addresses=127.0.0.1 -c max_connections=200"
        opts += "".join(f" -c {key}={value}" for key, value in self.settings.items())
        self._run(
            str(self.bin / "pg_ctl"), "-D", data, "-o", opts, "-l", str(self.base / "log"), "-w", "start"
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        finally:
            if not self.keep:
                shutil.rmtree(self.base, ignore_errors=True)


# The memory and planner settings of docs/deploy.md's postgresql.conf (a dedicated 16 GB machine), as
# `-c` values: what a deployment runs with, against the stock settings' 128 MB of shared buffers.
DEPLOY_SETTINGS = {
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "1GB",
    "random_page_cost": "1.1",
    "autovacuum_vacuum_scale_factor": "0.02",
}


# ------------------------------------------------------------------------------------ the server


class ServerProcess:
    """`workers` server processes on one loopback port; the first one runs the migrations alone."""

    def __init__(self, db_url: str, workers: int = 1, gate: str = "on") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        for _ in range(workers):
            proc = subprocess.Popen(
                [sys.executable, "-c", SERVER_CODE, db_url, str(self.port), gate],
                # The bench measures how long the 100k aggregate takes, so the public 1 s limit is raised here.
                env={**os.environ, "VDATA_QUERY_TIMEOUT": os.environ.get("VDATA_QUERY_TIMEOUT", "30")},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            self.procs.append(proc)
            line = proc.stdout.readline() if proc.stdout else b""
            if line.strip() != b"READY":
                err = proc.stderr.read().decode() if proc.stderr else ""
                self.stop()
                raise RuntimeError(f"server did not start: {err[-2000:]}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far: capacity per core, whatever the load."""
        total = 0
        for proc in self.procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# ------------------------------------------------------------------------------------ load


def make_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "text": f"Record {i}: the {rng.choice(['nurse', 'engineer', 'pilot', 'teacher'])} was "
            f"{rng.choice(['brilliant', 'careful', 'kind', 'decisive'])} and {rng.random():.6f} in every way.",
            "target": "nurse",
            "attribute": "brilliant",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "strategy": "targeted",
            "provider": "bench",
            "model": "synthetic",
        }
        for i in range(n)
    ]


async def put_all(
    url: str, records: list[dict[str, Any]], batch: int = 100, concurrency: int = 4
) -> tuple[float, int, int]:
    """Returns (seconds, accepted, duplicates)."""
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    accepted = duplicates = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted, duplicates
        while not queue.empty():
            b = queue.get_nowait()
            r = await client.put("/v1/records", json=b)
            r.raise_for_status()
            body = r.json()
            accepted += len(body["accepted"])
            duplicates += len(body["duplicates"])

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.perf_counter() - start, accepted, duplicates


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def get_load(port: int, seconds: float, clients: int, paths: list[str]) -> tuple[int, int, list[float]]:
    """Closed-loop load: each client sends the next GET as soon as the last answer arrived."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += clients
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200
        writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return len(latencies), errors, latencies


@dataclass
class Result:
    backend: str
    figures: dict[str, float] = field(default_factory=dict)


def approve_all(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:  # the operator's bulk approval; fixed SQL, no input
        conn.execute(text("UPDATE record_store SET status = 'approved' WHERE status = 'pending'"))
    engine.dispose()


def reports_pending(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT COUNT(*) FROM contribution_report WHERE status IN ('pending', 'running')")
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()


def put_phase(db_url: str, n: int, workers: int, gate: str) -> dict[str, float]:
    """PUT throughput alone on an empty database; with the gate on, also the seconds after the last PUT
    until the worker had made every report."""
    server = ServerProcess(db_url, workers, gate)
    try:
        # Warm-up, both settings alike: one PUT, and its report made (with the gate on, this starts the
        # worker process, a one-time cost per server, not a per-PUT one).
        asyncio.run(put_all(server.url, make_records(100, seed=1)))
        while gate == "on" and reports_pending(db_url):
            time.sleep(0.2)
        records = make_records(n)
        cpu0 = server.cpu_seconds()
        secs, accepted, _ = asyncio.run(put_all(server.url, records))
        figures = {
            "put_records_per_s": accepted / secs,
            "put_records_per_server_cpu_s": accepted / (server.cpu_seconds() - cpu0),
        }
        if gate == "on":
            t0 = time.perf_counter()
            while reports_pending(db_url):
                time.sleep(0.5)
            figures["gate_drain_s"] = time.perf_counter() - t0
        return figures
    finally:
        server.stop()


def fresh_databases(backend: str, pg_url: str | None, count: int) -> list[str]:
    """`count` empty databases of `backend` (SQLite files in a temporary folder, or PostgreSQL databases)."""
    if backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="vdata-bench-gate-"))
        return [f"sqlite:///{tmp / f'server{k}.sqlite3'}" for k in range(count)]
    from sqlalchemy import create_engine, text

    assert pg_url is not None
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for k in range(count):
            conn.execute(text(f"CREATE DATABASE bench_gate_{k}"))
    engine.dispose()
    return [pg_url.rsplit("/", 1)[0] + f"/bench_gate_{k}" for k in range(count)]


def compare_gate(backend: str, pg_url: str | None, n: int, workers: int, rounds: int) -> None:
    """PUT throughput with the gate off and on, alternating, each run on a fresh database."""
    urls = fresh_databases(backend, pg_url, 2 * rounds)
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for k in range(rounds):
        for j, gate in enumerate(("off", "on") if k % 2 == 0 else ("on", "off")):
            figures = put_phase(urls[2 * k + j], n, workers, gate)
            runs[gate].append(figures)
            extra = (
                f", reports done {figures['gate_drain_s']:.1f} s after the last PUT" if gate == "on" else ""
            )
            print(
                f"{backend} round {k + 1} gate {gate:>3}: {figures['put_records_per_s']:8.0f} records/s "
                f"({figures['put_records_per_server_cpu_s']:.0f} per server CPU-s){extra}; "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    off = statistics.median(r["put_records_per_s"] for r in runs["off"])
    on = statistics.median(r["put_records_per_s"] for r in runs["on"])
    off_cpu = statistics.median(r["put_records_per_server_cpu_s"] for r in runs["off"])
    on_cpu = statistics.median(r["put_records_per_server_cpu_s"] for r in runs["on"])
    print(
        f"{backend}: PUT records/s median gate off {off:.0f}, gate on {on:.0f}: ratio {on / off:.2f}x "
        f"(target >= 0.90x); per server CPU-s {off_cpu:.0f} vs {on_cpu:.0f}: {on_cpu / off_cpu:.2f}x; "
        f"reports done a median {statistics.median(r['gate_drain_s'] for r in runs['on']):.1f} s after the last PUT"
    )


def run_backend(backend: str, db_url: str, n: int, get_seconds: float, workers: int, gate: str) -> Result:
    result = Result(backend)
    server = ServerProcess(db_url, workers, gate)
    try:
        # Warm-up, both settings alike: one PUT, and its report made (with the gate on, this starts the
        # worker process, a one-time cost per server, not a per-PUT one).
        asyncio.run(put_all(server.url, make_records(100, seed=1)))
        while gate == "on" and reports_pending(db_url):
            time.sleep(0.2)
        records = make_records(n)
        cpu0 = server.cpu_seconds()
        secs, accepted, _ = asyncio.run(put_all(server.url, records))
        result.figures["put_records_per_s"] = accepted / secs
        result.figures["put_records_per_server_cpu_s"] = accepted / (server.cpu_seconds() - cpu0)
        redo = records[: min(10_000, n)]
        secs, _, dups = asyncio.run(put_all(server.url, redo))
        result.figures["put_dedup_records_per_s"] = dups / secs
        approve_all(db_url)
        paths = [f"/v1/records?limit=20&category={c}" for c in CATEGORIES] + ["/v1/records?limit=20"]
        asyncio.run(get_load(server.port, 1.0, 32, paths))  # warm-up
        cpu0 = server.cpu_seconds()
        count, errors, lat = asyncio.run(get_load(server.port, get_seconds, 32, paths))
        result.figures["get_req_per_server_cpu_s"] = count / (server.cpu_seconds() - cpu0)
        lat_ms = sorted(x * 1000 for x in lat)
        result.figures["get_req_per_s"] = count / get_seconds
        result.figures["get_p50_ms"] = lat_ms[len(lat_ms) // 2]
        result.figures["get_p99_ms"] = lat_ms[int(len(lat_ms) * 0.99)]
        result.figures["get_errors"] = errors
        times = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(10):
                t0 = time.perf_counter()
                r = client.get("/v1/query", params={"sql": QUERY_SQL})
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
            total = sum(row[2] for row in r.json()["rows"])
        result.figures["query_aggregate_ms"] = statistics.median(times) * 1000
        result.figures["query_rows_counted"] = total
    finally:
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--get-seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    parser.add_argument("--gate", choices=("on", "off", "compare"), default="on")
    parser.add_argument("--rounds", type=int, default=3, help="--gate compare: runs of each setting")
    args = parser.parse_args()
    print(
        f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (other work shares the cores)"
    )
    if args.gate == "compare":
        for backend in args.backends.split(","):
            if backend == "postgres":
                try:
                    pg = Postgres()
                except FileNotFoundError as e:
                    print(f"postgres: skipped ({e})")
                    continue
                try:
                    compare_gate("postgres", pg.start(), args.records, args.workers, args.rounds)
                finally:
                    pg.stop()
            else:
                compare_gate(backend, None, args.records, args.workers, args.rounds)
        return
    results: list[Result] = []
    for backend in args.backends.split(","):
        t0 = time.perf_counter()
        if backend == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="vdata-bench-"))
            try:
                results.append(
                    run_backend(
                        "sqlite",
                        f"sqlite:///{tmp / 'server.sqlite3'}",
                        args.records,
                        args.get_seconds,
                        args.workers,
                        args.gate,
                    )
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif backend == "postgres":
            try:
                pg = Postgres()
            except FileNotFoundError as e:
                print(f"postgres: skipped ({e})")
                continue
            try:
                results.append(
                    run_backend(
                        "postgres", pg.start(), args.records, args.get_seconds, args.workers, args.gate
                    )
                )
            finally:
                pg.stop()
        else:
            raise SystemExit(f"unknown backend {backend!r}; use sqlite and/or postgres")
        print(f"{backend}: done in {time.perf_counter() - t0:.0f} s", flush=True)

    targets = {
        "put_records_per_s": PUT_TARGET_RPS,
        "get_req_per_s": GET_TARGET_RPS,
        "get_p99_ms": GET_TARGET_P99_MS,
    }
    keys = list(results[0].figures) if results else []
    header = (
        f"{'metric':<26}"
        + "".join(f"{r.backend:>14}" for r in results)
        + f"{'target':>10}"
        + "  ratio to target"
    )
    print(header)
    for key in keys:
        line = f"{key:<26}" + "".join(f"{r.figures[key]:>14.1f}" for r in results)
        if key in targets:
            t = targets[key]
            ratios = [(t / r.figures[key] if key.endswith("_ms") else r.figures[key] / t) for r in results]
            line += f"{t:>10.0f}  " + " / ".join(f"{x:.2f}x" for x in ratios)
        print(line)


if __name__ == "__main__":
    main()
