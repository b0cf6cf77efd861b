"""Read-only SQL over the public views, in layers (as Datasette does it):

1. Parse with sqlglot: exactly one SELECT (CTEs and set operations allowed), reading only the public
   views `records` and `stats` (and its own CTEs), with no schema-qualified names, no SELECT INTO,
   no locking clauses and no functions that touch files, extensions, settings or other sessions.
2. Execute on a read-only connection: SQLite opened with `mode=ro` plus `PRAGMA query_only` and an
   authorizer that allows reading the views only; PostgreSQL in a READ ONLY transaction under the
   `vdata_readonly` role, which may select from the two views and nothing else.
3. Bound it: a wall-clock limit (SQLite: progress handler; PostgreSQL: statement_timeout) and a row
   limit (rows are fetched lazily, so a huge cross join is never materialised).
Every refusal is a `QueryRefused` whose message is the reason the API returns with 400.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from vdata.server.db import PUBLIC_VIEWS

log = logging.getLogger("vdata.server")

MAX_SQL_CHARS = 20_000
# Functions refused by name (lower case), on top of any name with a refused prefix.
FORBIDDEN_FUNCTIONS: frozenset[str] = frozenset(
    {
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "sqlite_compileoption_get",
        "sqlite_compileoption_used",
        "sqlite_offset",
        "zeroblob",
        "randomblob",
        "set_config",
        "current_setting",
        "dblink",
        "query_to_xml",
        "table_to_xml",
        "cursor_to_xml",
        "database_to_xml",
        "schema_to_xml",
        "txid_current",
        "nextval",
        "setval",
        "currval",
        "lastval",
        "version",
    }
)
FORBIDDEN_PREFIXES: tuple[str, ...] = ("pg_", "lo_", "dblink", "sqlite_", "xml", "ts_stat", "current_setting")


# Names a CTE may not take, so that a CTE can never be confused with a private table.
SHADOW_NAMES: frozenset[str] = frozenset(
    {
        "record_store",
        "alembic_version",
        "record_counts",
        "record_days",
        "record_keys",
        "archived_records",
        "archived_periods",
    }
)


class QueryRefused(Exception):
    """The query was refused or failed; the message is safe to show to the user."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed_ms: float


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def check_sql(sql: str, dialect: str) -> None:
    """Layer 1: refuse anything that is not one SELECT over the public views. Raises QueryRefused."""
    if not sql or not sql.strip():
        raise QueryRefused("empty query; send one SELECT over the views records and stats")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"query is {len(sql)} characters; the limit is {MAX_SQL_CHARS}")
    if "\x00" in sql:
        raise QueryRefused("query contains a NUL character")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as e:
        raise QueryRefused(f"cannot parse the query: {str(e).splitlines()[0][:300]}") from e
    except RecursionError as e:
        raise QueryRefused("query is nested too deeply") from e
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise QueryRefused(f"only SELECT is allowed, got {tree.key.upper()}")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    shadowing = sorted(n for n in cte_names if n in SHADOW_NAMES or n.startswith(("sqlite_", "pg_")))
    if shadowing:
        raise QueryRefused(f"CTE name(s) {shadowing} are reserved; choose other names")
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Insert | exp.Update | exp.Delete | exp.Merge):
            raise QueryRefused("only SELECT is allowed")
        if isinstance(node, exp.Create | exp.Drop | exp.Alter | exp.TruncateTable | exp.Attach | exp.Detach):
            raise QueryRefused("schema changes are not allowed")
        if isinstance(node, exp.Into):
            raise QueryRefused("SELECT INTO is not allowed")
        if isinstance(node, exp.Lock):
            raise QueryRefused("locking clauses (FOR UPDATE/SHARE) are not allowed")
        if isinstance(node, exp.Table):
            name = node.name.lower()
            if node.args.get("db") or node.args.get("catalog"):
                raise QueryRefused(
                    f"schema-qualified table {node.sql()} is not allowed; use records or stats"
                )
            if isinstance(node.this, exp.Func | exp.Anonymous) or not name:
                raise QueryRefused("table functions are not allowed; read the views records and stats")
            if name not in PUBLIC_VIEWS and name not in cte_names:
                raise QueryRefused(f"table {node.name!r} is not public; only the views records and stats")
        if isinstance(node, exp.Func):
            fname = _function_name(node)
            if fname in FORBIDDEN_FUNCTIONS or fname.startswith(FORBIDDEN_PREFIXES):
                raise QueryRefused(f"function {fname}() is not allowed")


# ----------------------------------------------------------------------------------------- SQLite

_SQLITE_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# The tables the public views read: `records` reads record_store, `stats` record_counts (migration 0005).
_SQLITE_UNDERLYING = frozenset({"record_store", "record_counts"})


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, db: str | None, view: str | None
) -> int:
    """Layer 2 for SQLite: allow reads of the views, and of record_store only from inside a view."""
    if action in _SQLITE_ALLOWED_ACTIONS:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in FORBIDDEN_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        table = (arg1 or "").lower()
        if db is None:
            # CTEs and subqueries: ephemeral, not stored tables.
            return sqlite3.SQLITE_OK
        if db != "main":
            return sqlite3.SQLITE_DENY
        if table in PUBLIC_VIEWS:
            return sqlite3.SQLITE_OK
        if table in _SQLITE_UNDERLYING and (view or "").lower() in PUBLIC_VIEWS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


def run_sqlite(path: str, sql: str, timeout_s: float, row_limit: int) -> QueryResult:
    uri = f"file:{path}?mode=ro"
    started = time.monotonic()
    deadline = started + timeout_s
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.set_authorizer(_sqlite_authorizer)
        timed_out = False

        def progress() -> int:
            nonlocal timed_out
            if time.monotonic() > deadline:
                timed_out = True
                return 1
            return 0

        conn.set_progress_handler(progress, 2000)
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchmany(row_limit + 1)
        except sqlite3.Error as e:
            if timed_out:
                raise QueryRefused(f"query ran longer than the {timeout_s:g} s limit and was stopped") from e
            raise QueryRefused(f"query failed: {e}") from e
        except (OverflowError, MemoryError, ValueError) as e:
            raise QueryRefused(f"query failed: {e}") from e
        columns = [d[0] for d in cursor.description or ()]
        cursor.close()
    finally:
        conn.close()
    truncated = len(rows) > row_limit
    return QueryResult(columns, rows[:row_limit], truncated, (time.monotonic() - started) * 1000)


# ------------------------------------------------------------------------------------- PostgreSQL


def run_postgres(
    get_connection: Callable[[], Any],
    sql: str,
    timeout_s: float,
    row_limit: int,
    role: str | None,
) -> QueryResult:
    """Run on a pooled psycopg connection in a READ ONLY transaction under `role`, always rolled back."""
    import psycopg
    from psycopg import sql as psql

    started = time.monotonic()
    conn = get_connection()
    try:
        raw = conn.driver_connection
        try:
            with raw.transaction(force_rollback=True):
                setup = raw.cursor()
                setup.execute("SET TRANSACTION READ ONLY")
                setup.execute(
                    "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout_s * 1000)}ms",)
                )
                setup.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)", ("5s",))
                if role:
                    setup.execute(psql.SQL("SET LOCAL ROLE {}").format(psql.Identifier(role)))
                # A named (server-side) cursor fetches lazily: the row limit bounds memory and time.
                with raw.cursor(name="vdata_query") as cursor:
                    cursor.execute(sql.encode("utf-8"))  # bytes: no client-side placeholder processing
                    rows = cursor.fetchmany(row_limit + 1)
                    columns = [d.name for d in cursor.description or ()]
        except psycopg.errors.QueryCanceled as e:
            raise QueryRefused(f"query ran longer than the {timeout_s:g} s limit and was stopped") from e
        except psycopg.Error as e:
            message = (e.diag.message_primary or str(e)).splitlines()[0] if e.diag else str(e)
            raise QueryRefused(f"query failed: {message}") from e
    finally:
        conn.close()
    truncated = len(rows) > row_limit
    return QueryResult(
        columns, [tuple(r) for r in rows[:row_limit]], truncated, (time.monotonic() - started) * 1000
    )
