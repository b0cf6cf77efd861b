"""Runs the contribution gate off the request path: a worker process that makes the reports.

A PUT queues the report in the database (a `contribution_report` row, status pending, written in the
same transaction as the batch) and wakes the worker; the response does not wait. The worker starts on
the reports once PUTs pause (QUIET_S), or after MAX_DEFER_S of continuous PUTs. The database rows are
the queue: the worker claims the oldest pending reports a round at a time (their records flagged
together), so a burst of PUTs costs the worker one signature update per round rather than one per batch,
and reports left behind by a restart are simply still there.

The worker is a separate process at a lower CPU priority (nice), so its hashing and lexicon work
neither holds the server's GIL nor takes a core from requests when both want one. Nothing is sent to
it per request beyond setting an Event.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
import time
from multiprocessing.synchronize import Event

from sqlalchemy import Engine

from vdata.server.settings import ServerSettings

log = logging.getLogger("vdata.server")

WORKER_NICE = 10
ROUND_BATCHES = 20  # reports claimed (and flagged together) per round
IDLE_POLL_S = 2.0  # an idle worker also looks at the queue this often (another process may have queued)
# Reports wait for a quiet moment: no PUT for QUIET_S. During a burst of PUTs the worker's work (and
# the database's work for it) would compete with the PUTs for the cores; a report waits at most
# MAX_DEFER_S for such a moment, after which the worker runs rounds beside the PUTs.
QUIET_S = 0.5
MAX_DEFER_S = 30.0


def worker_main(settings_json: str, wake: Event, stop: Event) -> None:
    """The worker process: claim queued reports, make them, until `stop`."""
    from vdata.server import db
    from vdata.server.gate import GateChecks, claim_pending, run_reports

    # This process's own logging: lines on stderr, like the server's.
    logging.basicConfig(stream=sys.stderr, format="%(message)s", level=logging.INFO)
    with contextlib.suppress(OSError):  # not permitted: the worker runs at the server's priority
        os.nice(WORKER_NICE)
    settings = ServerSettings.model_validate_json(settings_json)
    engine = db.make_engine(settings.db_url)
    checks = GateChecks(settings.gate_refresh_s)
    deferred_since: float | None = None  # when the first report still waiting for a quiet moment came
    draining = False
    while not stop.is_set():
        if draining and wake.is_set():
            draining = False  # PUTs are arriving again: wait for the next quiet moment
        if not draining:
            woke = wake.wait(QUIET_S if deferred_since is not None else IDLE_POLL_S)
            wake.clear()
            now = time.monotonic()
            if woke:
                deferred_since = deferred_since if deferred_since is not None else now
                if now - deferred_since < MAX_DEFER_S:
                    continue
        try:
            batch_ids = claim_pending(engine, ROUND_BATCHES)
            if batch_ids:
                run_reports(engine, batch_ids, checks, settings.auto_reject)
            draining = bool(batch_ids)
            if not batch_ids:
                deferred_since = None
        except Exception:  # a database hiccup: keep the worker, try again after the pause
            log.exception("gate: worker round failed")
            draining = False
    engine.dispose()


class GateQueue:
    """The server side: starts the worker process on first use (and again if it died) and wakes it."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        # spawn: the server process has threads (fork would copy their locks mid-use).
        self._context = multiprocessing.get_context("spawn")
        self._wake = self._context.Event()
        self._stop = self._context.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()

    def _ensure_worker(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        with self._lock:
            if self._stop.is_set() or (self._process is not None and self._process.is_alive()):
                return
            if self._process is not None:
                log.error("gate: worker process exited (%s); starting a new one", self._process.exitcode)
            self._process = self._context.Process(
                target=worker_main,
                args=(self.settings.model_dump_json(), self._wake, self._stop),
                name="vdata-gate",
                daemon=True,
            )
            self._process.start()

    def notify(self) -> None:
        """A report was queued: make sure the worker runs and wake it."""
        self._ensure_worker()
        self._wake.set()

    def resume(self, engine: Engine) -> int:
        """At start: wake the worker when reports are left in the queue; returns how many."""
        from vdata.server.gate import pending_reports, requeue_running

        waiting = pending_reports(engine) + requeue_running(engine)
        if waiting:
            self.notify()
        return waiting

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.join(timeout=10)  # a round in progress finishes (its reports stay consistent)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
