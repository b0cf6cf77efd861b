"""`vdata serve --benchmark-every 7d`: benchmark the latest snapshot on a schedule, in a subprocess.

Each tick (every `benchmark_every_s`, the first one at start), when the newest snapshot in the server's
snapshot folder has no stored benchmark yet, the scheduler runs `benchmark_command` (by default
`python -m vdata benchmark-dataset SNAPSHOT --out DIR`: the server never imports the pipeline) and
imports DIR/benchmark.json. A failing run is logged with the end of its output and tried again at the
next tick; it never stops the server.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from vdata.core.errors import UserError
from vdata.core.paths import data_dir
from vdata.server import benchmarks
from vdata.server.settings import ServerSettings
from vdata.server.snapshot import list_snapshots

log = logging.getLogger("vdata.server")

OUTPUT_TAIL = 2000
STOP_POLL_S = 0.5


class BenchmarkScheduler:
    """A daemon thread that ticks every `settings.benchmark_every_s` until `stop()`."""

    def __init__(self, settings: ServerSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="vdata-benchmarks", daemon=True)
        self.runs_dir = settings.benchmark_runs_dir or data_dir() / "benchmark-runs"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)

    def _loop(self) -> None:
        interval = float(self.settings.benchmark_every_s or 0)
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # the schedule must outlive any one failure
                log.exception("benchmark: scheduled run failed")
            self.stopping.wait(interval)

    def _log(self, event: str, **fields: object) -> None:
        log.info(json.dumps({"event": f"benchmark-{event}", **fields}))

    def tick(self) -> int | None:
        """One scheduled step; returns the id of the benchmark stored, or None."""
        root = self.settings.snapshots_dir
        snapshots = list_snapshots(root) if root else []
        if not snapshots:
            self._log("skipped", reason="no snapshot to benchmark (vdata serve --snapshots DIR)")
            return None
        snapshot_id = snapshots[-1]
        if benchmarks.latest_snapshot_benchmarked(self.engine, snapshot_id):
            self._log("skipped", snapshot=snapshot_id, reason="already benchmarked")
            return None
        assert root is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = self.runs_dir / f"{snapshot_id}-{stamp}"
        out.mkdir(parents=True, exist_ok=True)
        command = [
            part.format(python=sys.executable, snapshot=root / snapshot_id, out=out)
            for part in self.settings.benchmark_command
        ]
        self._log("started", snapshot=snapshot_id, command=command)
        status, output = self._run(command, out / "run.log")
        if self.stopping.is_set():
            return None
        if status != 0:
            log.error(
                json.dumps(
                    {
                        "event": "benchmark-failed",
                        "snapshot": snapshot_id,
                        "exit_status": status,
                        "output_tail": output[-OUTPUT_TAIL:],
                    }
                )
            )
            return None
        try:
            document = benchmarks.read_document(out / "benchmark.json")
            benchmark_id = benchmarks.import_document(self.engine, document, snapshot_id)
        except UserError as e:
            log.error(json.dumps({"event": "benchmark-failed", "snapshot": snapshot_id, "error": str(e)}))
            return None
        self._log("imported", snapshot=snapshot_id, id=benchmark_id, out=str(out))
        return benchmark_id

    def _run(self, command: list[str], log_path: Path) -> tuple[int, str]:
        """Run `command`, its output to `log_path`; ended early (status -1) when the server stops."""
        try:
            with log_path.open("w+", encoding="utf-8", errors="replace") as output:
                process = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
                while process.poll() is None:
                    if self.stopping.wait(STOP_POLL_S):
                        process.terminate()
                        process.wait(timeout=30)
                        return -1, "stopped with the server"
                output.seek(0)
                return process.returncode, output.read()
        except OSError as e:
            return -1, f"cannot run {command[0]!r}: {e.strerror or e}"
