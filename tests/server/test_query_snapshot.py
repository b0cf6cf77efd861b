"""/v1/query?engine=snapshot (DuckDB over the latest snapshot's Parquet files) and `vdata pull --sql
--snapshot`. The hostile SQL of test_query_safety.py runs against this engine too (its `target` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vdata.server.query import QueryRefused
from vdata.server.query_snapshot import _connect, latest_snapshot, run_duckdb
from vdata.server.serve import ThreadedServer
from vdata.server.snapshot import make_settings, take_snapshot

from .conftest import SEED_APPROVED, Server, server_settings


@pytest.fixture(scope="module")
def snapshot_server(
    seeded_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("snapshots")
    take_snapshot(make_settings(db_url=seeded_server.settings.db_url, out_dir=root, settle_s=0))
    with ThreadedServer(server_settings(seeded_server.settings.db_url, snapshots_dir=root)) as threaded:
        yield threaded.url, root


def test_aggregates_stats_and_what_the_answer_covers(snapshot_server: tuple[str, Path]) -> None:
    url, root = snapshot_server
    sql = "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY category"
    body = httpx.get(f"{url}/v1/query", params={"sql": sql, "engine": "snapshot"}).json()
    assert body["rows"] == [["gender", SEED_APPROVED // 2], ["race", SEED_APPROVED // 2]]
    snapshot_id, watermark, _ = latest_snapshot(root)
    assert body["snapshot"] == snapshot_id and body["approved_until"] == watermark
    stats = httpx.get(
        f"{url}/v1/query",
        params={"sql": "SELECT status, SUM(n) FROM stats GROUP BY status", "engine": "snapshot"},
    ).json()
    assert [(s, int(n)) for s, n in stats["rows"]] == [("approved", SEED_APPROVED)]
    live = httpx.get(f"{url}/v1/query", params={"sql": sql}).json()
    assert live["rows"] == body["rows"] and "snapshot" not in live
    csv = httpx.get(
        f"{url}/v1/query",
        params={
            "sql": "SELECT id, category FROM records ORDER BY id LIMIT 3",
            "engine": "snapshot",
            "format": "csv",
        },
    )
    assert csv.headers["x-snapshot"] == snapshot_id and csv.text.splitlines()[0] == "id,category"
    assert httpx.get(f"{url}/v1/query", params={"sql": sql, "engine": "nosuch"}).status_code == 422


def test_without_snapshots_the_engine_says_so(seeded_server: Server) -> None:
    response = seeded_server.http.get("/v1/query", params={"sql": "SELECT 1", "engine": "snapshot"})
    assert response.status_code == 400 and "--snapshots" in response.json()["detail"]


# With the parser layer bypassed, the locked DuckDB connection itself refuses to touch anything else.
DATABASE_BYPASS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('/etc/hostname')",
    "COPY (SELECT 1) TO '/tmp/vdata-evil.csv'",
    "ATTACH '/tmp/vdata-evil.duckdb' AS evil",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET memory_limit = '100GB'",
    "SET threads = 64",
    "INSTALL httpfs",
    "LOAD httpfs",
]


def test_database_layer_alone_refuses(snapshot_server: tuple[str, Path]) -> None:
    import duckdb

    _, root = snapshot_server
    _, _, files = latest_snapshot(root)
    con = _connect(files)
    for sql in DATABASE_BYPASS:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert con.execute("SELECT COUNT(*) FROM records").fetchall() == [(SEED_APPROVED,)]
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
    con.close()
    assert not Path("/tmp/vdata-evil.csv").exists() and not Path("/tmp/vdata-evil.duckdb").exists()


def test_duckdb_refuses_its_own_file_functions(snapshot_server: tuple[str, Path]) -> None:
    _, root = snapshot_server
    _, _, files = latest_snapshot(root)
    for sql in (
        "SELECT getenv('HOME')",
        "SELECT * FROM records WHERE text = (SELECT content FROM read_text('/etc/passwd'))",
        "SELECT COUNT(*) FROM glob('/etc/*')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM parquet_metadata('x')",
    ):
        with pytest.raises(QueryRefused):
            run_duckdb(files, sql, 1.0, 10)


def test_vdata_pull_sql_snapshot(snapshot_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = snapshot_server
    out = tmp_path / "counts.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "pull",
            str(out),
            "-c",
            "--sql",
            "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY category",
            "--snapshot",
            "latest",
            "--server",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == [
        "category,n",
        f"gender,{SEED_APPROVED // 2}",
        f"race,{SEED_APPROVED // 2}",
    ]


def test_vdata_serve_snapshots_flag(tmp_path: Path) -> None:
    """`vdata serve --snapshots DIR` (a real server process) answers engine=snapshot from DIR."""
    import socket
    import time
    from datetime import UTC, datetime

    from .snapshot_helpers import add_records, make_db, snapshot_settings

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 7, "gender", "Served", moderated_at="2026-01-01T00:00:00Z")
    engine.dispose()
    take_snapshot(snapshot_settings(url, tmp_path / "snaps"), now=datetime(2026, 1, 2, tzinfo=UTC))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", "--db", url, "--port", str(port), "--snapshots", str(tmp_path / "snaps")]
    server = subprocess.Popen([sys.executable, "-m", "vdata.cli", *args], stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "vdata serve did not start"
                time.sleep(0.2)
        body = httpx.get(
            f"{base}/v1/query", params={"sql": "SELECT COUNT(*) FROM records", "engine": "snapshot"}
        ).json()
        assert body["rows"] == [[7]] and body["snapshot"] == "20260102T000000Z"
    finally:
        server.terminate()
        server.wait(timeout=30)
