"""What every endpoint shares, held once on `app.state.vdata` and handed to routes as a dependency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine

from vdata.core.ratelimit import KeyedTokenBuckets
from vdata.server.gate_worker import GateQueue
from vdata.server.periodic import PeriodicSnapshots
from vdata.server.pgread import AsyncReadPool
from vdata.server.query import QueryResult, check_sql, run_postgres, run_sqlite
from vdata.server.replica import ReadReplica
from vdata.server.settings import ServerSettings


@dataclass
class ServerState:
    settings: ServerSettings
    engine: Engine
    put_limiter: KeyedTokenBuckets
    # PostgreSQL only: native asyncio reads for GET /v1/records (see pgread.py).
    read_pool: AsyncReadPool | None
    # The role /v1/query runs under, when it exists and the server's user may take it (found at start).
    query_role: str | None = None
    # The contribution gate's worker (None when the operator turned the gate off).
    gate: GateQueue | None = None
    # `--read-db`: the streaming replica public reads go to while it keeps up (replica.py), and its pool.
    replica: ReadReplica | None = None
    replica_pool: AsyncReadPool | None = None
    # `--snapshot-every`: the background snapshot writer (periodic.py).
    snapshotter: PeriodicSnapshots | None = None

    @property
    def read_engine(self) -> Engine:
        """Where a public read goes now: the replica when there is one and it keeps up, else the primary."""
        return self.engine if self.replica is None else self.replica.engine()

    def read(self, fetch: Callable[..., T], *args: Any) -> T:
        """`fetch(engine, *args)` for a public read, on the replica with fallback to the primary."""
        if self.replica is None:
            return fetch(self.engine, *args)
        return self.replica.run(fetch, *args)

    def run_live_query(self, sql: str) -> QueryResult:
        """One read-only query over the public views of the live database (GET /v1/query, the /sql page);
        raises QueryRefused with the reason."""
        settings = self.settings
        check_sql(sql, "sqlite" if settings.is_sqlite else "postgres")
        if settings.is_sqlite:
            path = self.engine.url.database or ""
            return run_sqlite(path, sql, settings.query_timeout_s, settings.query_row_limit)
        return self.read(
            lambda engine: run_postgres(
                engine.raw_connection,
                sql,
                settings.query_timeout_s,
                settings.query_row_limit,
                self.query_role,
            )
        )

    def async_read_pool(self) -> AsyncReadPool | None:
        """The async pool for GET /v1/records: the replica's while it keeps up, else the primary's."""
        if self.replica is not None and self.replica.healthy:
            return self.replica_pool
        return self.read_pool


T = TypeVar("T")


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.vdata
    return state


State = Annotated[ServerState, Depends(server_state)]
