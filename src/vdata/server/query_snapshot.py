"""Read-only SQL over the latest snapshot's Parquet files with DuckDB (`/v1/query?engine=snapshot`).

A row store cannot scan hundreds of millions of rows within a request; a columnar engine over the
immutable snapshot files can. The same layers as query.py, in DuckDB's terms:

1. The same parser check (`check_sql`): one SELECT over the views `records` and `stats`, plus DuckDB's
   own file-reading and catalogue functions refused by name.
2. A fresh in-memory DuckDB per query whose views read exactly the snapshot's files, then
   `allowed_paths` (those files only), `enable_external_access = false`, no extension loading, a memory
   and thread limit, and `lock_configuration = true`, so the query cannot change any of it.
3. Bounds: a timer calls `interrupt()` at the time limit, and the result is cut at the row limit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlglot import exp, parse_one

from vdata.core.records import PUBLIC_COLUMNS
from vdata.server.query import QueryRefused, QueryResult, check_sql
from vdata.server.snapshot import cached_manifest, list_snapshots

# Per query: DuckDB's memory and threads (the server's other requests need the rest of the machine).
MEMORY_LIMIT = "1GB"
THREADS = 2
# DuckDB functions that read files, list the catalogue or the environment: refused on top of query.py's.
DUCKDB_FORBIDDEN_PREFIXES: tuple[str, ...] = (
    "read_",
    "glob",
    "duckdb_",
    "pragma_",
    "parquet_",
    "sniff_",
    "getenv",
    "current_setting",
    "query",
    "iceberg_",
    "delta_",
    "load",
    "install",
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def check_duckdb_sql(sql: str) -> None:
    """query.py's check for the DuckDB dialect, plus DuckDB's own functions that touch files or the catalogue."""
    check_sql(sql, "duckdb")
    for node in parse_one(sql, read="duckdb").walk():
        if isinstance(node, exp.Func):
            name = node.name.lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()
            if name.startswith(DUCKDB_FORBIDDEN_PREFIXES):
                raise QueryRefused(f"function {name}() is not allowed")


def _connect(files: list[Path]) -> object:
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={
            "threads": THREADS,
            "memory_limit": MEMORY_LIMIT,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
        },
    )
    paths = [str(p.resolve()) for p in files]
    listed = ", ".join(_quote(p) for p in paths)
    columns = ", ".join(PUBLIC_COLUMNS)
    con.execute(f"CREATE VIEW records AS SELECT {columns} FROM read_parquet([{listed}])")
    con.execute(
        "CREATE VIEW stats AS SELECT 'approved' AS status, category, strategy, provider, COUNT(*) AS n "
        "FROM records GROUP BY category, strategy, provider"
    )
    con.execute(f"SET allowed_paths = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def latest_snapshot(root: Path | None) -> tuple[str, str, list[Path]]:
    """(id, watermark, shard paths) of the newest snapshot under `root`; QueryRefused if there is none."""
    if root is None:
        raise QueryRefused(
            "this server publishes no snapshots; use engine=live (its operator: vdata serve --snapshots DIR)"
        )
    ids = list_snapshots(root)
    if not ids:
        raise QueryRefused("no snapshot has been taken yet; use engine=live")
    manifest = cached_manifest(root, ids[-1])
    return ids[-1], manifest["watermark"], [root / ids[-1] / e["path"] for e in manifest["files"]]


def run_duckdb(files: list[Path], sql: str, timeout_s: float, row_limit: int) -> QueryResult:
    """Run one checked SELECT over `files` (a snapshot's shards). Raises QueryRefused."""
    import duckdb

    check_duckdb_sql(sql)
    started = time.monotonic()
    if not files:
        raise QueryRefused("the latest snapshot holds no records yet")
    con = _connect(files)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        con.interrupt()  # type: ignore[attr-defined]

    timer = threading.Timer(timeout_s, stop)
    timer.start()
    try:
        # The row limit is part of the query, so DuckDB stops producing rows there.
        body = sql.strip().rstrip(";")
        cursor = con.execute(f"SELECT * FROM (\n{body}\n) AS vdata_query LIMIT {row_limit + 1}")  # type: ignore[attr-defined]
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description or ()]
    except duckdb.Error as e:
        if timed_out.is_set():
            raise QueryRefused(f"query ran longer than the {timeout_s:g} s limit and was stopped") from e
        raise QueryRefused(f"query failed: {str(e).splitlines()[0][:300]}") from e
    finally:
        timer.cancel()
        con.close()  # type: ignore[attr-defined]
    truncated = len(rows) > row_limit
    return QueryResult(columns, rows[:row_limit], truncated, (time.monotonic() - started) * 1000)
