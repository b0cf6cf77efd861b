"""`vdata serve --snapshots DIR --snapshot-every INTERVAL`: the server writes incremental snapshots into
the folder it serves, in the background (here with an interval of a second)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.server.periodic import PeriodicSnapshots
from vdata.server.settings import ServerSettings

from .conftest import new_db_url, sample_records, start_server


def wait_for_rows(server, rows: int, timeout_s: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        listing = server.http.get("/v1/snapshots").json()
        if listing["snapshots"] and listing["snapshots"][0]["rows"] == rows:
            return listing
        assert time.monotonic() < deadline, f"no snapshot of {rows} rows in {timeout_s} s: {listing}"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_serve_takes_snapshots_in_the_background(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = tmp_path / "snapshots"
    url = new_db_url(backend, request, tmp_path_factory)
    threaded, server = start_server(url, snapshots_dir=root, snapshot_every_s=1.0, snapshot_settle_s=1.0)
    try:
        ids = server.http.put("/v1/records", json=sample_records(6, "Snap")).json()["accepted"]
        for record_id in ids[:4]:
            assert server.moderate(record_id).status_code == 200
        first = wait_for_rows(server, 4)
        ids2 = server.http.put("/v1/records", json=sample_records(3, "Later", "race")).json()["accepted"]
        for record_id in ids2:
            assert server.moderate(record_id).status_code == 200
        listing = wait_for_rows(server, 7)
        newest = listing["snapshots"][0]
        # Incremental: the newer snapshot lists the older one as its previous.
        assert newest["previous"] == first["latest"]
        assert newest["id"] in threaded.server.config.app.state.vdata.snapshotter.taken
        # With nothing new approved, no further snapshot is written.
        time.sleep(3.5)
        assert server.http.get("/v1/snapshots").json()["latest"] == listing["latest"]
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_next_snapshot_is_due_an_interval_after_the_latest(tmp_path: Path) -> None:
    (tmp_path / "20260101T000000Z").mkdir()
    (tmp_path / "20260101T000000Z" / "manifest.json").write_text("{}")
    every = PeriodicSnapshots("sqlite:///unused", tmp_path, 3600.0)
    taken = 1767225600.0  # 2026-01-01T00:00:00Z
    assert every.seconds_until_due(now=taken + 600) == pytest.approx(3000)
    assert every.seconds_until_due(now=taken + 7200) == 0
    assert PeriodicSnapshots("sqlite:///unused", tmp_path / "none", 60).seconds_until_due() == 0


def test_snapshot_every_needs_a_snapshot_folder() -> None:
    with pytest.raises(UserError, match="needs snapshots_dir"):
        ServerSettings.from_env("sqlite:///x.sqlite3", snapshot_every_s=60.0)


WORKERS_CODE = """
import sys
from pathlib import Path
from vdata.server.serve import configure_logging, run_workers
from vdata.server.settings import ServerSettings
configure_logging()
settings = ServerSettings(db_url=sys.argv[1], snapshots_dir=Path(sys.argv[2]), snapshot_every_s=1.0,
                          snapshot_settle_s=0.0)
run_workers(settings, "127.0.0.1", int(sys.argv[3]), 2)
"""


def test_with_workers_one_snapshot_writer_runs_in_the_supervisor(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys

    import httpx

    from vdata.server import db

    from .conftest import _free_port
    from .snapshot_helpers import add_records

    url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    add_records(engine, 5, "gender", "Workers")
    engine.dispose()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKERS_CODE, url, str(tmp_path / "snapshots"), str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        listing: dict = {}
        while not listing.get("snapshots"):
            assert proc.poll() is None and time.monotonic() < deadline, "server with 2 workers did not start"
            with contextlib.suppress(httpx.HTTPError):
                listing = httpx.get(f"http://127.0.0.1:{port}/v1/snapshots", timeout=5).json()
            time.sleep(0.2)
        assert listing["snapshots"][0]["rows"] == 5
        time.sleep(2)  # the workers are up and would be due now too, if they ran a writer each
        engine = db.make_engine(url)
        add_records(engine, 3, "race", "Later")
        engine.dispose()
        while listing["snapshots"][0]["rows"] != 8:
            assert time.monotonic() < deadline, listing
            time.sleep(0.2)
            listing = httpx.get(f"http://127.0.0.1:{port}/v1/snapshots").json()
        time.sleep(3)  # a few intervals with nothing new
        assert len(httpx.get(f"http://127.0.0.1:{port}/v1/snapshots").json()["snapshots"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith('{"event"')]
    # One writer: one snapshot, then "unchanged" runs; two writers would race (skipped or failed runs).
    assert events.count("snapshot") == 2, stderr[-2000:]
    assert "snapshot_skipped" not in events and "snapshot_failed" not in events
