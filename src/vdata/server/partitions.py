"""PostgreSQL: the monthly partitions of `record_store` (migration 0006).

Each month of `submitted_at` has its own partition, made ahead of time (this month and the next two, at
every server start and every `vdata archive`); a row whose month has none lands in the DEFAULT partition.
A month found there is carved out into its own partition when it is needed (to archive it, or when its
partition is made late), so every archived month leaves by DETACH, never by a scan of the whole table.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import Connection, Engine, and_, column, func, or_, select, table

_MIGRATION = importlib.import_module("vdata.server.migrations.versions.0006_archive")
partition_name = _MIGRATION.partition_name
month_bounds = _MIGRATION.month_bounds
months_ahead = _MIGRATION.months_ahead
DEFAULT_PARTITION = "record_store_default"
# Serialises partition changes between processes (several workers start at once).
_LOCK_KEY = 0x76646174  # "vdat"


# The seq bounds of each day's rows (migration 0009), kept by the count triggers.
_record_days = table("record_days", column("day"), column("n"), column("min_seq"), column("max_seq"))


def submitted_in_seq_range(submitted_at: Any, low: Any, high: Any) -> list[Any]:
    """Conditions on the partition key that every row with seq in [low, high] meets: from the first to the
    last day with rows whose seq bounds touch the range (or whose rows have no bounds). PostgreSQL then
    reads only those months' partitions, pruned when the statement runs; the days are read in the
    statement's own snapshot, so the search stays exact. A resumed search in seq order reads a stretch
    of a few days on a server, whose PUTs set seq and submitted_at together (migration 0009)."""
    d = _record_days.c
    unplaced = func.bool_or(and_(d.n > 0, d.min_seq.is_(None)))
    touching = (
        select(d.day)
        .group_by(d.day)
        .having(func.sum(d.n) > 0)
        .having(or_(unplaced, and_(func.min(d.min_seq) <= high, func.max(d.max_seq) >= low)))
        .cte("touching_days")
    )
    first, last = func.min(touching.c.day), func.max(touching.c.day)
    # The least string above all that start with the last day: its last character plus one (C order).
    above_last = func.left(last, -1).op("||")(func.chr(func.ascii(func.right(last, 1)) + 1))
    key = submitted_at.collate("C")
    return [key >= select(first).scalar_subquery(), key < select(above_last).scalar_subquery()]


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


def detach_and_drop(conn: Connection, month: str) -> None:
    """Take `month`'s partition out of record_store and drop it (its rows are in the verified snapshot
    and archived_records by now). DETACH fires no trigger: the counts and the keys stay."""
    name = partition_name(month)
    conn.exec_driver_sql(f"ALTER TABLE record_store DETACH PARTITION {name}")
    conn.exec_driver_sql(f"DROP TABLE {name}")


def lock_month(conn: Connection, month: str) -> None:
    """Hold writes to `month`'s partition until the transaction ends (reads go on)."""
    conn.exec_driver_sql(f"LOCK TABLE {partition_name(month)} IN SHARE MODE")
