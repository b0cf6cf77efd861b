"""The public dataset server: one FastAPI app wired from routers (routers/), middleware and shared state.

Public API: GET and PUT only. Contributions arrive `pending` and become visible (GET /v1/records, the
`records` view of /v1/query) only after a moderator approves them with the token from
VDATA_MODERATOR_TOKEN.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from vdata import __version__
from vdata.core.ratelimit import KeyedTokenBuckets
from vdata.server import db, partitions
from vdata.server.benchmark_schedule import BenchmarkScheduler
from vdata.server.gate_worker import GateQueue
from vdata.server.middleware import AccessLog, RateLimit, RequestGuard, SecurityHeaders
from vdata.server.pages import page_routes
from vdata.server.pages.render import PageCaches
from vdata.server.pages_admin import admin_page_routes
from vdata.server.periodic import snapshotter_for
from vdata.server.pgread import AsyncReadPool
from vdata.server.replica import CONNECT_TIMEOUT_S, ReadReplica, replica_engine
from vdata.server.routers import benchmarks, contributions, info, moderation, query, records, snapshots
from vdata.server.routers.docs import docs_routes
from vdata.server.settings import ServerSettings
from vdata.server.state import ServerState

log = logging.getLogger("vdata.server")


@asynccontextmanager
async def _lifespan(app: FastAPI, *, migrate: bool) -> AsyncIterator[None]:
    state: ServerState = app.state.vdata
    engine, settings = state.engine, state.settings
    if migrate:
        await run_in_threadpool(db.upgrade, engine)
    if not settings.is_sqlite:
        if await run_in_threadpool(db.may_take_role, engine, settings.readonly_role):
            state.query_role = settings.readonly_role
        else:
            log.warning(
                "role %s is missing or not granted to the server's user: /v1/query runs in READ ONLY "
                "transactions with a timeout, without the role layer",
                settings.readonly_role,
            )
    if state.replica is not None:
        await run_in_threadpool(state.replica.start)
    # Once per server, like the scheduler below: `--workers N` runs it in the supervisor (serve.py).
    months = partitions.MonthsAheadKeeper(engine) if migrate and not settings.is_sqlite else None
    if months is not None:
        months.start()
    state.snapshotter = snapshotter_for(settings)
    if state.snapshotter is not None:
        state.snapshotter.start()
    # The counts of the home page and of /records, computed once in the background (seconds at 10^6 rows).
    threading.Thread(target=app.state.pages.warm, args=(engine,), daemon=True).start()
    if state.gate is not None:
        resumed = await run_in_threadpool(state.gate.resume, engine)
        if resumed:
            log.info(json.dumps({"event": "gate-resumed", "reports": resumed}))
    scheduler = BenchmarkScheduler(settings, engine) if settings.benchmark_every_s and migrate else None
    if scheduler is not None:
        scheduler.start()
    log.info(json.dumps({"event": "ready", "db": engine.url.render_as_string(hide_password=True)}))
    yield
    if scheduler is not None:
        scheduler.stop()
    if months is not None:
        months.stop()
    if state.gate is not None:
        state.gate.close()
    if state.snapshotter is not None:
        await run_in_threadpool(state.snapshotter.stop)
    if state.replica is not None:
        await run_in_threadpool(state.replica.stop)
    for pool in (state.read_pool, state.replica_pool):
        if pool is not None:
            await pool.close()
    engine.dispose()


def create_app(settings: ServerSettings, *, migrate: bool = True) -> FastAPI:
    """The app. `migrate`: bring the schema up to date at start (off in workers, whose parent did it)."""
    engine = db.make_engine(settings.db_url)
    state = ServerState(
        settings=settings,
        engine=engine,
        put_limiter=KeyedTokenBuckets(settings.put_rate, settings.put_burst),
        read_pool=AsyncReadPool(engine) if engine.dialect.name == "postgresql" else None,
        gate=GateQueue(settings) if settings.gate else None,
    )
    app = FastAPI(
        title="vdata public dataset",
        version=__version__,
        description="A public, moderated dataset of debiasing sentences. Contributions by PUT, reads by GET.",
        lifespan=functools.partial(_lifespan, migrate=migrate),
        # The routers' routes themselves, records (the hottest) first: a request is matched against
        # routes in order, and included routers would add a layer of matching to every request.
        routes=[
            *records.router.routes,
            *query.router.routes,
            # The reader pages (HTML) before info: `/` is the home page (server information is at /v1/).
            *page_routes(),
            *info.router.routes,
            *moderation.router.routes,
            *docs_routes(),
            *snapshots.router.routes,
            *contributions.router.routes,
            *benchmarks.router.routes,
            *admin_page_routes(),
            Mount("/static", StaticFiles(packages=[("vdata.server", "static")]), name="static"),
        ],
        docs_url=None,  # served by docs_routes, from local files
    )
    if settings.read_db_url is not None:
        replica = replica_engine(settings.read_db_url)
        state.replica = ReadReplica(
            engine,
            replica,
            max_lag_s=settings.replica_max_lag_s,
            check_every_s=settings.replica_check_s,
        )
        state.replica_pool = AsyncReadPool(replica, connect_timeout_s=CONNECT_TIMEOUT_S)
    app.state.vdata = state
    app.state.pages = PageCaches(settings.count_cache_s)
    # Added innermost first: a request meets the access log, the security headers, the guard, the rate limit.
    app.add_middleware(RateLimit, limiter=state.put_limiter, methods=("PUT",), paths=("/v1/records",))
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app
