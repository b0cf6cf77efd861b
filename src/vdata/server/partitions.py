"""PostgreSQL: the monthly partitions of `record_store` (migration 0006).

Each month of `submitted_at` has its own partition, made ahead of time (this month and the next two, at
every server start, every `vdata archive`, and once a day while a server runs: `MonthsAheadKeeper`); a row
whose month has none lands in the DEFAULT partition.
A month found there is carved out into its own partition when it is needed (to archive it, or when its
partition is made late), so every archived month leaves by DETACH, never by a scan of the whole table.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from typing import Any

from sqlalchemy import Connection, Engine

_MIGRATION = importlib.import_module("vdata.server.migrations.versions.0006_archive")
partition_name = _MIGRATION.partition_name
month_bounds = _MIGRATION.month_bounds
months_ahead = _MIGRATION.months_ahead
DEFAULT_PARTITION = "record_store_default"
# Serialises partition changes between processes (several workers start at once).
_LOCK_KEY = 0x76646174  # "vdat"
log = logging.getLogger("vdata.server")


def is_partitioned(conn: Connection) -> bool:
    return bool(
        conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'record_store'::regclass)"
        ).scalar()
    )


def has_partition(conn: Connection, month: str) -> bool:
    return (
        conn.exec_driver_sql("SELECT to_regclass(%(n)s)", {"n": partition_name(month)}).scalar() is not None
    )


def _in_range(month: str) -> tuple[str, dict[str, Any]]:
    low, high = month_bounds(month)
    return 'submitted_at COLLATE "C" >= %(low)s AND submitted_at COLLATE "C" < %(high)s', {
        "low": low,
        "high": high,
    }


def _stored_columns(conn: Connection) -> str:
    names = conn.exec_driver_sql(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'record_store'::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
    ).scalars()
    return ", ".join(f'"{n}"' for n in names)


def ensure_partition(conn: Connection, month: str) -> None:
    """Give `month` (YYYY-MM, validated by the caller) its own partition, carving its rows out of the
    default partition when some landed there. Runs in the caller's transaction."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(k)s)", {"k": _LOCK_KEY})
    if has_partition(conn, month):
        return
    low, high = month_bounds(month)
    where, bounds = _in_range(month)
    name = partition_name(month)
    has_rows = conn.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE {where})", bounds
    ).scalar()
    columns = _stored_columns(conn)
    if has_rows:
        # Statements on a partition fire no statement trigger of the parent: the counts stay as they
        # are. The row triggers free the keys on the delete and take them again on the insert.
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE vdata_carve ON COMMIT DROP AS SELECT {columns} FROM {DEFAULT_PARTITION} "
            f"WHERE {where}",
            bounds,
        )
        conn.exec_driver_sql(f"DELETE FROM {DEFAULT_PARTITION} WHERE {where}", bounds)
    conn.exec_driver_sql(
        f"CREATE TABLE {name} PARTITION OF record_store FOR VALUES FROM ('{low}') TO ('{high}')"
    )
    if has_rows:
        conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM vdata_carve")
        conn.exec_driver_sql("DROP TABLE vdata_carve")


def ensure_months_ahead(engine: Engine) -> None:
    """This month's and the next two months' partitions (a no-op when they exist, or on SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        if not is_partitioned(conn):
            return
        for month in months_ahead():
            ensure_partition(conn, month)


class MonthsAheadKeeper:
    """Makes the months' partitions ahead again every `every_s` while the server runs (the start made
    them). Without it a server up for more than two months would put the later months' rows in the
    DEFAULT partition: one partition that grows with the table, where a month's own partition keeps its
    indexes and statistics to that month, which is what keeps the searches flat at volume
    (docs/server.md, "At volume")."""

    def __init__(self, engine: Engine, every_s: float = 86_400.0) -> None:
        self.engine = engine
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                ensure_months_ahead(self.engine)
            except Exception as e:  # the server keeps serving; the next day retries
                log.error(json.dumps({"event": "partitions_failed", "error": f"{type(e).__name__}: {e}"}))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vdata-partitions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


def detach_and_drop(conn: Connection, month: str) -> None:
    """Take `month`'s partition out of record_store and drop it (its rows are in the verified snapshot
    and archived_records by now). DETACH fires no trigger: the counts and the keys stay."""
    name = partition_name(month)
    conn.exec_driver_sql(f"ALTER TABLE record_store DETACH PARTITION {name}")
    conn.exec_driver_sql(f"DROP TABLE {name}")


def lock_month(conn: Connection, month: str) -> None:
    """Hold writes to `month`'s partition until the transaction ends (reads go on)."""
    conn.exec_driver_sql(f"LOCK TABLE {partition_name(month)} IN SHARE MODE")
