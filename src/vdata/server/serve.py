"""Running the app under uvicorn: logging set-up, graceful shutdown, and a loopback thread for tests."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import uvicorn

from vdata.server.settings import ServerSettings

GRACEFUL_SHUTDOWN_S = 30


def configure_logging(level: int = logging.INFO) -> None:
    """Access and server logs as JSON lines on stderr (the messages themselves are JSON)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("vdata.access", "vdata.server"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def make_server(settings: ServerSettings, host: str, port: int, *, access_log: bool = True) -> uvicorn.Server:
    from vdata.server.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        # Our middleware writes structured access lines; uvicorn's own would duplicate them.
        access_log=False,
        log_level="warning",
        # SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to this long), then exit.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    if not access_log:
        logging.getLogger("vdata.access").setLevel(logging.WARNING)
    return uvicorn.Server(config)


SETTINGS_ENV = "VDATA_SERVE_SETTINGS_JSON"  # how `vdata serve --workers N` hands settings to its workers


def run_workers(settings: ServerSettings, host: str, port: int, workers: int) -> None:
    """Several worker processes on one port (uvicorn's supervisor); migrations run once, here, first."""
    from vdata.server import db, partitions
    from vdata.server.periodic import snapshotter_for

    engine = db.make_engine(settings.db_url)
    db.upgrade(engine)
    # Background snapshots, benchmarks and partitions run once, here in the supervisor, not in every worker.
    snapshotter = snapshotter_for(settings)
    if snapshotter is not None:
        snapshotter.start()
    scheduler = None
    if settings.benchmark_every_s:
        from vdata.server.benchmark_schedule import BenchmarkScheduler

        scheduler = BenchmarkScheduler(settings, engine)
        scheduler.start()
    months = partitions.MonthsAheadKeeper(engine) if not settings.is_sqlite else None
    if months is not None:
        months.start()
    if scheduler is None and months is None:
        engine.dispose()
    os.environ[SETTINGS_ENV] = settings.model_copy(update={"snapshot_every_s": None}).model_dump_json()
    try:
        _run_uvicorn_workers(host, port, workers)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if months is not None:
            months.stop()
        if scheduler is not None or months is not None:
            engine.dispose()
        if snapshotter is not None:
            snapshotter.stop()


def _run_uvicorn_workers(host: str, port: int, workers: int) -> None:
    uvicorn.run(
        "vdata.server.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )


def app_from_env() -> Any:
    """Worker-side app factory for run_workers."""
    from vdata.server.app import create_app

    configure_logging()
    settings = ServerSettings.model_validate_json(os.environ[SETTINGS_ENV])
    return create_app(settings, migrate=False)


class ThreadedServer:
    """A real uvicorn server on loopback in a background thread (tests and in-process tools)."""

    def __init__(self, settings: ServerSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = make_server(settings, host, port, access_log=False)
        self.server.config.timeout_graceful_shutdown = 5
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
