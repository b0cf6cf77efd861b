"""Runs the contribution gate off the request path: a worker process that makes the reports.

A PUT queues the report in the database (a `contribution_report` row, status pending, written with the
batch) and hands the batch id to this worker; the response does not wait. The worker is a separate
process at a lower CPU priority (nice), so its hashing and lexicon work neither holds the server's GIL
nor takes a core away from requests when both want one. The database row is the durable queue: at
start, the reports still pending (a restart, a crashed worker) are queued again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import Engine

from vdata.server.settings import ServerSettings

log = logging.getLogger("vdata.server")

WORKER_NICE = 10

# In the worker process: built once by `_start_worker`.
_worker: dict[str, Any] = {}


def _start_worker(settings_json: str) -> None:
    from vdata.server import db
    from vdata.server.gate import GateChecks

    with contextlib.suppress(OSError):  # not permitted: the worker runs at the server's priority
        os.nice(WORKER_NICE)
    settings = ServerSettings.model_validate_json(settings_json)
    _worker["settings"] = settings
    _worker["engine"] = db.make_engine(settings.db_url)
    _worker["checks"] = GateChecks(settings.gate_refresh_s)


def _report(batch_id: str) -> str:
    from vdata.server.gate import run_report

    settings: ServerSettings = _worker["settings"]
    return run_report(_worker["engine"], batch_id, _worker["checks"], settings.auto_reject)


class GateQueue:
    """Hands batch ids to the worker process (started on first use, restarted if it dies)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    # spawn: the server process has threads (fork would copy their locks mid-use).
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.settings.model_dump_json(),),
                )
            return self._pool

    def submit(self, batch_id: str) -> None:
        if self._closed:
            return
        try:
            future = self._executor().submit(_report, batch_id)
        except (BrokenProcessPool, RuntimeError):
            # The worker died (killed, out of memory): start a new one; the report is queued again.
            with self._lock:
                self._pool = None
            future = self._executor().submit(_report, batch_id)
        future.add_done_callback(lambda f, b=batch_id: self._done(b, f))

    def _done(self, batch_id: str, future: Future[str]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is not None and not self._closed:
            # The report stays pending in the database; the next start (or a later PUT's restart of
            # the worker) takes it up again.
            log.error("gate: worker failed on batch %s: %s", batch_id, error)

    def resume(self, engine: Engine) -> int:
        """Queue the reports left pending by an earlier run; returns how many."""
        from vdata.server.gate import pending_reports

        batch_ids = pending_reports(engine)
        for batch_id in batch_ids:
            self.submit(batch_id)
        return len(batch_ids)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
