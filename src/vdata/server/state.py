"""What every endpoint shares, held once on `app.state.vdata` and handed to routes as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from vdata.core.ratelimit import KeyedTokenBuckets
from vdata.server.gate_worker import GateQueue
from vdata.server.pgread import AsyncReadPool
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


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.vdata
    return state


State = Annotated[ServerState, Depends(server_state)]
