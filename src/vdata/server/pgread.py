"""Native asyncio reads from PostgreSQL for the hottest endpoint (GET /v1/records).

The rest of the server uses SQLAlchemy's synchronous engine through a thread pool. For a page read that
costs more than the query: a thread hop per request and the GIL handed back and forth between the event
loop and dozens of worker threads (bench/server_load.py measured about 1.5 ms of server CPU per GET).
psycopg's async connections wait on the socket in the event loop itself, so a stalled database still
never blocks the loop, and no thread is involved.

The SQL text comes from `store` (compiled once per filter shape from the same SQLAlchemy statement as
the synchronous path), so both paths run the same query.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine

from vdata.server import store
from vdata.server.seq_search import WalkFacts

# Every read connection: read-only transactions, and a query that runs away is cancelled by the server.
READ_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=10000"


class AsyncReadPool:
    """At most `size` psycopg AsyncConnections (autocommit, read-only), opened on first use.

    The slots are an `asyncio.Semaphore`, not a Condition over a counter: Python 3.11's `Condition.wait`
    swallows a wake-up when the woken task is cancelled before it runs (a client that disconnects), and
    the next waiter then waits forever with a connection idle (tests/server/test_pgread_pool.py). A slot
    is released before anything that can be cancelled on the way out."""

    def __init__(self, engine: Engine, size: int = 10, connect_timeout_s: float = 5.0) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._dialect = engine.dialect
        self._size = size
        self._connect_timeout_s = connect_timeout_s
        self._idle: list[Any] = []
        self._slots: asyncio.Semaphore | None = None

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            options=READ_OPTIONS,
            connect_timeout=max(1, int(self._connect_timeout_s)),
        )

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self._slots is None:  # created in the running loop
            self._slots = asyncio.Semaphore(self._size)
        await self._slots.acquire()
        conn: Any = None
        healthy = False
        try:
            conn = self._idle.pop() if self._idle else await self._connect()
            yield conn
            healthy = not conn.closed
        finally:
            if healthy:
                self._idle.append(conn)
            self._slots.release()
            if not healthy and conn is not None:
                # A broken or interrupted connection is dropped; the next request opens a fresh one.
                with contextlib.suppress(Exception):
                    await conn.close()

    async def fetch_page_json(self, query: store.PageQuery) -> tuple[list[str], str | None]:
        """`store.fetch_page_json` over an async connection: rows as JSON object texts, next cursor.

        A read is idempotent, so when the connection turns out to be dead (the database restarted, or
        an operator terminated its sessions) the idle connections are dropped and the read is retried
        once on a fresh one: the client never sees the restart.
        """
        import psycopg

        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    search = store.page_search(query, self._dialect.name)
                    while search.step:
                        cursor = await conn.execute(*store.step_sql(self._dialect, query, search))
                        raw = await cursor.fetchall()
                        facts = None
                        if search.needs_facts(raw):
                            walked = await conn.execute(*store.walk_facts_sql(self._dialect, query, search))
                            facts = WalkFacts(*(await walked.fetchone()))
                        search.add(raw, facts)
                return store.split_json_page(search.rows, query.limit)
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                await self.close()  # its siblings are most likely dead too
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the idle connections (the ones in use are dropped when they come back broken)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
