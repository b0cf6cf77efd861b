"""Reads from a PostgreSQL streaming replica (hot standby), with fallback to the primary.

`vdata serve --db PRIMARY --read-db REPLICA`: public reads (GET /v1/records, /v1/stats, /v1/query, the
reader pages) go to the replica while it is reachable and close enough behind the primary; writes,
moderation and sign-in always use the primary. Replication itself is PostgreSQL's (`pg_basebackup -R`
and a standby server): nothing here copies data.

How far behind: a monitor thread notes the primary's WAL position (`pg_current_wal_insert_lsn()`) at every
check, and asks the replica how far it has replayed (`pg_last_wal_replay_lsn()`). The replica's lag is
the age of the oldest noted primary position it has not replayed yet: "it is missing writes the primary
had N seconds ago". That is zero on an idle primary, unlike `now() - pg_last_xact_replay_timestamp()`.
Over `max_lag_s`, or when the replica does not answer, reads go to the primary until it catches up; each
switch is logged once.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from vdata.server.pgread import AsyncReadPool
    from vdata.server.store import PageQuery

log = logging.getLogger("vdata.server")

T = TypeVar("T")
CONNECT_TIMEOUT_S = 3


def replica_engine(url: str) -> Engine:
    """The replica's engine; connecting gives up after a few seconds, so that a replica that vanished
    from the network (no refusal, just silence) is noticed quickly instead of after TCP's minutes."""
    from sqlalchemy.engine import make_url

    from vdata.server.db import make_engine

    with_timeout = make_url(url).update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    return make_engine(with_timeout.render_as_string(hide_password=False))


def lsn_to_int(lsn: str) -> int:
    """A pg_lsn text such as '0/3000148' as a byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class ReadReplica:
    """The replica's engine and whether reads may use it now (decided by `check`, run by a thread)."""

    def __init__(self, primary: Engine, replica: Engine, *, max_lag_s: float, check_every_s: float) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.check_every_s = check_every_s
        self.healthy = False  # until the first check says otherwise
        self.lag_s: float | None = None
        self.reason = "not checked yet"
        # (monotonic time, primary WAL position) of each check, oldest first, until the replica replays it.
        self._pending: collections.deque[tuple[float, int]] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A query that finds the replica gone marks it down at once: the next read goes to the primary.
        event.listen(replica, "handle_error", self._on_error)

    def _on_error(self, context: Any) -> None:
        if context.is_disconnect:
            self._set(False, None, "connection to the replica lost")

    def _set(self, healthy: bool, lag_s: float | None, reason: str) -> None:
        was = self.healthy
        self.healthy, self.lag_s, self.reason = healthy, lag_s, reason
        if was and not healthy:
            log.warning(json.dumps({"event": "replica_fallback", "reads": "primary", "reason": reason}))
        elif healthy and not was:
            log.info(json.dumps({"event": "replica_in_use", "reads": "replica", "lag_s": lag_s}))

    def mark_down(self, reason: str) -> None:
        self._set(False, None, reason)

    def check(self) -> None:
        """One look at both servers; updates `healthy`, `lag_s` and `reason`."""
        now = time.monotonic()
        try:
            with self.primary.connect() as conn:
                primary_lsn = lsn_to_int(
                    conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
                )
        except Exception as e:  # the primary being down is reported by the write paths
            self._set(self.healthy, self.lag_s, f"primary unreachable: {type(e).__name__}")
            return
        self._pending.append((now, primary_lsn))
        try:
            with self.replica.connect() as conn:
                replayed = conn.execute(
                    text(
                        "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                        "ELSE pg_current_wal_lsn() END::text"
                    )
                ).scalar_one()
        except Exception as e:  # any failure to answer means: do not read from it
            self._set(False, None, f"replica unreachable: {type(e).__name__}")
            return
        replay_lsn = lsn_to_int(replayed) if replayed else 0
        while self._pending and self._pending[0][1] <= replay_lsn:
            self._pending.popleft()
        lag_s = now - self._pending[0][0] if self._pending else 0.0
        if lag_s > self.max_lag_s:
            self._set(False, lag_s, f"replica {lag_s:.1f} s behind (limit {self.max_lag_s:g} s)")
        else:
            self._set(True, lag_s, "ok")

    def engine(self) -> Engine:
        return self.replica if self.healthy else self.primary

    def run(self, read: Callable[..., T], *args: Any) -> T:
        """`read(engine, *args)` on the replica when healthy; on the primary when not, or when the replica
        fails during this read (a read is safe to repeat)."""
        if not self.healthy:
            return read(self.primary, *args)
        try:
            return read(self.replica, *args)
        except DBAPIError as e:
            if not (e.connection_invalidated or _is_connection_error(e)):
                raise
            self.mark_down(f"read failed on the replica: {type(e.orig).__name__}")
            return read(self.primary, *args)

    async def run_async(
        self, replica_pool: AsyncReadPool, primary_pool: AsyncReadPool | None, query: PageQuery
    ) -> tuple[list[str], str | None]:
        """A JSON page from the replica's async pool, or from the primary's when the replica fails."""
        import psycopg

        try:
            return await replica_pool.fetch_page_json(query)
        except psycopg.OperationalError as e:
            if primary_pool is None or isinstance(e, psycopg.errors.QueryCanceled):
                raise
            self.mark_down(f"read failed on the replica: {type(e).__name__}")
            return await primary_pool.fetch_page_json(query)

    def status(self) -> dict[str, Any]:
        return {
            "reads_from": "replica" if self.healthy else "primary",
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "reason": self.reason,
        }

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._loop, name="vdata-replica-monitor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.check_every_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.replica.dispose()


def _is_connection_error(error: DBAPIError) -> bool:
    import psycopg

    # A statement timeout is an OperationalError too, but the primary would time out just the same.
    return isinstance(error.orig, psycopg.OperationalError) and not isinstance(
        error.orig, psycopg.errors.QueryCanceled
    )
