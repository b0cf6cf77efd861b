"""`vdata serve` as a real process: migrations at start, structured access logs, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from served import start_serve

SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_serve_logs_and_finishes_in_flight_requests_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "served.sqlite3"
    env = {**os.environ, "VDATA_HOME": str(tmp_path / "home")}
    process, url = start_serve(
        [sys.executable, "-m", "vdata.cli"], f"sqlite:///{db}", env, extra_args=["--query-timeout", "2"]
    )
    try:
        assert db.exists(), "migrations created the database file at start"

        # A request that takes ~2 s (stopped by the query time limit) is in flight when SIGTERM arrives.
        result: dict[str, httpx.Response] = {}
        slow = threading.Thread(
            target=lambda: result.update(r=httpx.get(f"{url}/v1/query", params={"sql": SLOW_SQL}, timeout=30))
        )
        slow.start()
        time.sleep(0.7)
        process.send_signal(signal.SIGTERM)
        slow.join(timeout=30)
        assert result["r"].status_code == 400 and "limit" in result["r"].json()["detail"]
        # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean stop too.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read() if process.stderr else ""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if "method" in entry]
    assert {"ts", "method", "path", "status", "ms", "client"} <= set(access[-1])
    assert any(entry["path"] == "/v1/query" and entry["status"] == 400 for entry in access)
    assert any(entry.get("event") == "ready" for entry in lines)
