"""The server's own statements (SQLAlchemy Core, bound parameters only)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import importlib
import itertools
import json
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import ProgrammingError

from vdata.core.records import PUBLIC_COLUMNS, Record, normalise_text
from vdata.server.db import record_store
from vdata.server.seq_search import SeqSearch, WalkFacts

# The transaction-local setting with which a PUT's statement tells migration 0006's key trigger that it
# claimed its rows' keys itself (see `_pg_insert_claimed`).
KEYS_CLAIMED: str = importlib.import_module("vdata.server.migrations.versions.0006_archive").KEYS_CLAIMED
UNDEFINED_TABLE = "42P01"
# Per engine: False once its database turned out to have no record_keys (below migration 0006).
_CLAIMS_KEYS: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()

FULL_COLUMNS: tuple[str, ...] = (
    *PUBLIC_COLUMNS,
    "attributes",
    "params",
    "prompt_sha256",
    "vdata_version",
    "status",
    "submitted_at",
)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_sha256(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq after which the next page starts; ValueError for a cursor this server did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ValueError("invalid cursor") from e
    if not raw.startswith("s") or not raw[1:].isdigit() or len(raw) > 20:
        raise ValueError("invalid cursor")
    return int(raw[1:])


@dataclass
class PutOutcome:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _row_for(record: Record, contributor: str, submitted_at: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "content_sha256": content_sha256(record.text),
        "text": record.text,
        "target": record.target,
        "attribute": record.attribute,
        "category": record.category,
        "strategy": record.strategy,
        "attributes": None
        if record.attributes is None
        else json.dumps(record.attributes, ensure_ascii=False),
        "provider": record.provider,
        "model": record.model,
        "prompt_sha256": record.prompt_sha256,
        "params": json.dumps(record.params, ensure_ascii=False),
        "created_at": record.created_at,
        "vdata_version": record.vdata_version,
        "contributor": contributor,
        "status": "pending",
        "submitted_at": submitted_at,
    }


def put_records(engine: Engine, records: Sequence[Record], contributor: str) -> PutOutcome:
    """Store new records as pending in one transaction; report duplicates (same normalised text).

    One statement: INSERT ... ON CONFLICT DO NOTHING RETURNING id (on PostgreSQL, into the key table
    first: `_pg_insert_claimed`). The rows it returns are the new ones; every other record was already
    stored, archived, or repeated in the batch. A concurrent PUT of the same text wins the race
    harmlessly: nothing is stored twice.
    """
    outcome = PutOutcome()
    if not records:
        return outcome
    submitted_at = now_utc()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in records:
        if record.id not in seen:
            seen.add(record.id)
            rows.append(_row_for(record, contributor, submitted_at))
    if engine.dialect.name == "postgresql":
        stored = _pg_put(engine, rows)
    else:
        with engine.begin() as conn:
            stmt = sqlite_insert(record_store).on_conflict_do_nothing().returning(record_store.c.id)
            stored = set(conn.execute(stmt, rows).scalars())
    for record in records:
        if record.id in stored:
            outcome.accepted.append(record.id)
            stored.discard(record.id)  # a second copy in the same batch is a duplicate
        else:
            outcome.duplicates.append(record.id)
    return outcome


def _pg_put(engine: Engine, rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: store the new rows in one transaction, claiming their keys in `record_keys`; on a
    database below migration 0006 (no `record_keys`: a test's or a benchmark's older schema) the plain
    insert, which its unique constraints guard. Which one a database takes is learnt once per engine."""
    claims = _CLAIMS_KEYS.get(engine, True)
    try:
        with engine.begin() as conn:
            stored = _pg_insert_claimed(conn, rows) if claims else _pg_insert_new(conn, rows)
            # Each PUT appends a few count rows (migration 0005); now and then they are folded up here,
            # on the primary, since /v1/stats may be read from a replica that cannot write.
            if next(_puts) % COMPACT_EVERY_PUTS == 0:
                compact_counts(conn)
        return stored
    except ProgrammingError as e:
        if not claims or getattr(e.orig, "sqlstate", None) != UNDEFINED_TABLE:
            raise
    _CLAIMS_KEYS[engine] = False  # rolled back, nothing written: again with the plain insert
    return _pg_put(engine, rows)


def _pg_insert_new(conn: Any, rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: insert a batch as one array per column (`unnest`), returning the ids stored.

    A multi-row VALUES list has a placeholder per value, and psycopg re-parses such a long statement on
    every call (it caches only short ones): most of a PUT's CPU time. With one array parameter per
    column the statement is short, fixed and parsed once. Column names come from `_row_for`, not input.
    """
    columns = list(rows[0])
    arrays = ", ".join(f"%({name})s::text[]" for name in columns)
    sql = (
        f"INSERT INTO {record_store.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    params = {name: [row[name] for row in rows] for name in columns}
    return {r[0] for r in conn.exec_driver_sql(sql, params)}


def _pg_insert_claimed(conn: Any, rows: list[dict[str, Any]]) -> set[str]:
    """`_pg_insert_new` for a `record_store` partitioned by migration 0006, whose global uniqueness of
    `id` and `content_sha256` lives in `record_keys`.

    One statement claims the batch's keys there (ON CONFLICT DO NOTHING: a key already taken, by a stored,
    an archived or a racing record, is not returned) and inserts only the rows whose keys it claimed, with
    the seq it drew for them. Its RETURNING sets KEYS_CLAIMED, which spares these rows the per-row trigger
    that claims the keys of every other insert: the flag is set before any row reaches record_store, since
    each row's seq comes out of that same RETURNING.
    """
    columns = list(rows[0])
    arrays = ", ".join(f"%({name})s::text[]" for name in columns)
    names = ", ".join(columns)
    sql = (
        f"WITH batch AS (SELECT * FROM unnest({arrays}) AS batch({names})), "
        "claimed AS (INSERT INTO record_keys (id, content_sha256, seq) SELECT id, content_sha256, "
        f"nextval((SELECT CAST(pg_get_serial_sequence('{record_store.name}', 'seq') AS regclass))) "
        "FROM batch ON CONFLICT DO NOTHING "
        f"RETURNING id, seq, set_config('{KEYS_CLAIMED}', 'on', true)) "
        f"INSERT INTO {record_store.name} (seq, {names}) SELECT claimed.seq, batch.* FROM batch "
        "JOIN claimed USING (id) RETURNING id"
    )
    params = {name: [row[name] for row in rows] for name in columns}
    return {r[0] for r in conn.exec_driver_sql(sql, params)}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A substring of fewer characters has no trigram: the trigram index (migration 0007) cannot serve it.
SUBSTRING_INDEX_MIN = 3
# SQLite's trigram index (0007): an FTS5 table whose rowid is record_store.seq.
records_trgm = table("records_trgm", column("rowid"))
_TRGM_MATCH = literal_column("records_trgm").op("MATCH")(bindparam("trigrams", type_=Text))


def trigram_match(q: str) -> str:
    """FTS5 query for the rows holding every trigram of `q` (quoted tokens ANDed: the index keeps no
    positions, so no phrase queries); the caller keeps its LIKE test, which makes the answer exact."""
    trigrams = sorted({q[i : i + 3] for i in range(len(q) - 2)})
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams)


@functools.lru_cache(maxsize=64)
def _walk_facts_statement(
    n_categories: int, by_strategy: bool, by_provider: bool, after: bool
) -> Select[Any]:
    """seq_search.WalkFacts of a walk of `probe_rows` rows (an index-only read), with the count table's
    rows for the filters."""
    c = record_store.c
    groups = (n_categories, by_strategy, by_provider)
    where = [c.status == bindparam("status"), *_group_filters(c, *groups)]
    if after:
        where.append(c.seq > bindparam("after_seq"))
    walk = select(c.seq).where(*where).order_by(c.seq).limit(bindparam("probe_rows")).subquery("walk")
    total = rows_statement(*groups).scalar_subquery()
    return select(func.min(walk.c.seq), func.max(walk.c.seq), func.count(), total)


@functools.lru_cache(maxsize=64)
def rows_statement(n_categories: int, by_strategy: bool, by_provider: bool) -> Select[Any]:
    """How many rows a filter shape selects, from migration 0005's count table: cheap at any size."""
    c = record_counts.c
    where = [c.status == bindparam("status"), *_group_filters(c, n_categories, by_strategy, by_provider)]
    return select(func.coalesce(func.sum(c.n), literal_column("0"))).where(*where)


def _group_filters(c: Any, n_categories: int, by_strategy: bool, by_provider: bool) -> list[Any]:
    """The category/strategy/provider conditions of a page, on record_store's or the count table's columns.
    One bound parameter per category (not an "expanding" one): the SQL text is fixed per count."""
    where = []
    if n_categories:
        where.append(c.category.in_([bindparam(f"category_{i}") for i in range(n_categories)]))
    if by_strategy:
        where.append(c.strategy == bindparam("strategy"))
    if by_provider:
        where.append(c.provider == bindparam("provider"))
    return where


@functools.lru_cache(maxsize=256)
def _records_statement(
    columns: tuple[str, ...],
    n_categories: int,
    by_strategy: bool,
    by_provider: bool,
    by_text: bool,
    after: bool,
    text_indexed: bool = False,
    probe: bool = False,
    bounded: bool = False,
    json_dialect: str | None = None,
    dialect: str = "",
) -> Select[Any]:
    """One statement per filter shape and dialect, built once: SQLAlchemy then reuses its compiled form.

    Selects `seq` and the columns, or, with `json_dialect`, `seq` and each row already serialised as a
    JSON object by the database (SQLite `json_object`, PostgreSQL `json_build_object`), which spares the
    hottest endpoint building and serialising a dict per row in Python.

    A substring search the trigram index can serve (`text_indexed`) reads, on SQLite, the FTS5 trigram
    table first and pages by its rowid (= seq, yielded in order), like browse.py's word search; the
    status test is then written so that no record_store index can serve it, or SQLite walks record_store
    and runs the FTS5 query per row. On PostgreSQL (see seq_search.py) `probe` is a walk: the LIKE test
    over the next `probe_rows` rows in seq order, a subquery whose LIMIT no plan can skip; `bounded` the
    search up to seq `bound_seq` (a resumed one), for the planner to read as it likes; with neither, the
    statement that goes to the GIN trigram index.
    """
    via_trigrams = by_text and text_indexed and dialect == "sqlite"
    c: Any = record_store.c
    seq = c.seq
    if via_trigrams:
        seq = records_trgm.c.rowid
        source: Any = records_trgm.join(record_store, c.seq == records_trgm.c.rowid)
        where = [_TRGM_MATCH, c.status + "" == bindparam("status")]
    else:
        source = record_store
        where = [c.status == bindparam("status")]
    where += _group_filters(c, n_categories, by_strategy, by_provider)
    if after:
        where.append(seq > bindparam("after_seq"))
    if bounded:
        where.append(seq <= bindparam("bound_seq"))
    if probe:  # only ever set with a text search (a walk step)
        needed = dict.fromkeys(("seq", "text", *columns))
        walk = (
            select(*(c[name] for name in needed))
            .where(*where)
            .order_by(c.seq)
            .limit(bindparam("probe_rows"))
            .subquery("walk")
        )
        c, seq, source, where = walk.c, walk.c.seq, walk, []
    if by_text:
        where.append(func.lower(c.text).like(bindparam("pattern"), escape="\\"))
    if json_dialect is None:
        cols: list[Any] = [c[name] for name in columns]
    else:
        pairs = [x for name in columns for x in (literal_column(f"'{name}'"), c[name])]
        obj = func.json_object(*pairs) if json_dialect == "sqlite" else func.json_build_object(*pairs)
        cols = [cast(obj, Text) if json_dialect == "postgresql" else obj]
    stmt = select(seq, *cols).select_from(source).where(*where)
    # PostgreSQL's last step (seq_search.py): the string is rare near the start of the walk, so collect its
    # matches through the trigram index and sort them. Ordering by `seq + 0` keeps the planner from walking
    # the (status, seq) index instead: it misjudges how many rows match a rare string and may read all.
    last_step = by_text and text_indexed and not (probe or bounded) and dialect == "postgresql"
    return stmt.order_by(seq + 0 if last_step else seq).limit(bindparam("limit"))


@dataclass(frozen=True)
class PageQuery:
    """One page of records: the filter shape (what the SQL text depends on) and the bound values."""

    # columns, categories, by strategy, by provider, by text, after a seq, text indexed, probe, bounded
    shape: tuple[tuple[str, ...], int, bool, bool, bool, bool, bool, bool, bool]
    params: dict[str, Any]
    limit: int  # rows wanted; the statement asks for one more, to know whether a next page exists


def records_query(
    *,
    status: str,
    columns: Sequence[str],
    categories: Sequence[str] = (),
    strategy: str | None = None,
    provider: str | None = None,
    q: str | None = None,
    after_seq: int | None = None,
    limit: int,
) -> PageQuery:
    """A page of records (user input only in bound parameters)."""
    indexed = len(q or "") >= SUBSTRING_INDEX_MIN
    shape = (
        tuple(columns),
        len(categories),
        bool(strategy),
        bool(provider),
        bool(q),
        after_seq is not None,
        indexed,
        False,
        False,
    )
    params: dict[str, Any] = {"status": status, "limit": limit + 1}
    for i, category in enumerate(categories):
        params[f"category_{i}"] = category
    if strategy:
        params["strategy"] = strategy
    if provider:
        params["provider"] = provider
    if q:
        params["pattern"] = f"%{_escape_like(q.lower())}%"
    if indexed:
        params["trigrams"] = trigram_match(q or "")
    if after_seq is not None:
        params["after_seq"] = after_seq
    return PageQuery(shape, params, limit)


def _step_query(query: PageQuery, search: SeqSearch) -> PageQuery:
    """The statement of `search`'s current step (seq_search.py) for `query`."""
    if search.step == "walk":
        params = {**query.params, "probe_rows": search.probe_rows}
        return PageQuery((*query.shape[:7], True, False), params, query.limit)
    if search.step == "resume" and search.resume:
        # After the walk's last row (the `after` flag set) and up to the bound, ordered by plain seq.
        shape = (*query.shape[:5], True, query.shape[6], False, True)
        params = {**query.params, "after_seq": search.resume.after, "bound_seq": search.resume.bound}
        params["limit"] = search.wanted - len(search.rows)  # the rest of the page
        return PageQuery(shape, params, query.limit)
    return query


def page_search(query: PageQuery, dialect: str) -> SeqSearch:
    """The steps of `query`'s page: on PostgreSQL an indexed substring search walks first."""
    return SeqSearch(query.limit + 1, walking=dialect == "postgresql" and query.shape[6])


def step_sql(dialect: Any, query: PageQuery, search: SeqSearch) -> tuple[str, Any]:
    """(driver SQL, parameters) of a JSON page's current step: what the async reads (pgread.py) send."""
    return json_page_sql(dialect, _step_query(query, search))


@functools.lru_cache(maxsize=64)
def _compiled_walk_facts(dialect: Any, shape: tuple[Any, ...]) -> str:
    return str(_walk_facts_statement(*shape[1:4], shape[5]).compile(dialect=dialect))


def walk_facts_sql(dialect: Any, query: PageQuery, search: SeqSearch) -> tuple[str, dict[str, Any]]:
    """(driver SQL, parameters) of the `WalkFacts` of `search`'s walk, when it `needs_facts`."""
    return _compiled_walk_facts(dialect, query.shape), {**query.params, "probe_rows": search.probe_rows}


def _split_page(raw: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    more = len(raw) > limit
    raw = raw[:limit]
    return raw, encode_cursor(raw[-1][0]) if more and raw else None


def fetch_page(engine: Engine, query: PageQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of one keyset page as dicts, and the cursor of the next page (None on the last page)."""
    keys, raw = _attempted_rows(
        engine,
        query,
        lambda conn, attempt: conn.execute(
            _records_statement(*attempt.shape, dialect=engine.dialect.name), attempt.params
        ),
    )
    page, next_cursor = _split_page(raw, query.limit)
    return [dict(zip(keys[1:], r[1:], strict=True)) for r in page], next_cursor


def _attempted_rows(
    engine: Engine, query: PageQuery, execute: Callable[[Any, PageQuery], Any]
) -> tuple[list[str], Sequence[Any]]:
    """(column names, rows) of `query`'s page: the steps of its search (seq_search.py) in turn, each run
    by `execute`."""
    search = page_search(query, engine.dialect.name)
    keys: list[str] = []
    with engine.connect() as conn:
        while search.step:
            result = execute(conn, _step_query(query, search))
            keys, raw = list(map(str, result.keys())), result.fetchall()
            facts = None
            if search.needs_facts(raw):
                facts = WalkFacts(*conn.exec_driver_sql(*walk_facts_sql(engine.dialect, query, search)).one())
            search.add(raw, facts)
    return keys, search.rows


JSON_DIALECTS = ("sqlite", "postgresql")


@functools.lru_cache(maxsize=256)
def _compiled_json_page(
    dialect: Any, shape: tuple[Any, ...]
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """(SQL text in the driver's parameter style, parameter order for positional styles, values of the
    parameters the compiler added itself, such as SQLite's `OFFSET ?` after a bound LIMIT)."""
    compiled = _records_statement(*shape, json_dialect=dialect.name, dialect=dialect.name).compile(
        dialect=dialect
    )
    order = tuple(compiled.positiontup) if dialect.positional and compiled.positiontup else None
    return str(compiled), order, dict(compiled.params)


def json_page_sql(dialect: Any, query: PageQuery) -> tuple[str, Any]:
    """(driver SQL, driver parameters) of a JSON page for `dialect`: what `fetch_page_json` and the
    async PostgreSQL reads (pgread.py) send."""
    sql, order, defaults = _compiled_json_page(dialect, query.shape)
    values = {**defaults, **query.params}
    return sql, tuple(values[name] for name in order) if order else values


def fetch_page_json(engine: Engine, query: PageQuery) -> tuple[list[str], str | None]:
    """Like `fetch_page`, with each row a JSON object text made by the database (see `_records_statement`).

    The SQL is compiled once per filter shape and sent as driver SQL: no per-request compilation or
    result processing, while the connection still comes from (and errors still reach) SQLAlchemy's pool.
    """
    _, raw = _attempted_rows(
        engine, query, lambda conn, attempt: conn.exec_driver_sql(*json_page_sql(engine.dialect, attempt))
    )
    return split_json_page(raw, query.limit)


def split_json_page(raw: Sequence[Any], limit: int) -> tuple[list[str], str | None]:
    """(JSON object texts of the page, next cursor) from (seq, json) rows fetched with limit + 1."""
    page, next_cursor = _split_page(raw, limit)
    return [r[1] for r in page], next_cursor


def set_status(engine: Engine, record_id: str, status: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(record_store)
            .where(record_store.c.id == bindparam("rid"))
            .values(status=status, moderated_at=now_utc()),
            {"rid": record_id},
        )
        return bool(result.rowcount)


# Kept exact by the triggers of migration 0005 (see there): counts per group, and records per day.
record_counts = table(
    "record_counts", *(column(c) for c in ("status", "category", "strategy", "provider", "n"))
)
record_days = table("record_days", column("day"), column("n"))
# PostgreSQL appends a delta row per group and statement; past this many rows a read folds them up.
COMPACT_AFTER_ROWS = 5_000
COMPACT_EVERY_PUTS = 500
_puts = itertools.count(1)


def compact_counts(conn: Any) -> None:
    """PostgreSQL: fold the delta rows of the count tables into one row per group, in place.

    One statement per table (DELETE ... RETURNING feeding the INSERT): a concurrent writer's rows
    either are seen and folded or are left as they are, and two compactions never fold a row twice.
    """
    for name, keys in (("record_counts", "status, category, strategy, provider"), ("record_days", "day")):
        conn.exec_driver_sql(
            f"WITH gone AS (DELETE FROM {name} RETURNING {keys}, n) "
            f"INSERT INTO {name} ({keys}, n) SELECT {keys}, SUM(n) FROM gone GROUP BY {keys} "
            "HAVING SUM(n) <> 0"
        )


# The columns the count tables group approved records by, besides status.
COUNTED_COLUMNS = ("category", "strategy", "provider")


def status_counts(conn: Any) -> dict[str, int]:
    """Records per status, from the count tables: exact, a few hundred rows read at any volume."""
    c = record_counts.c
    n = func.sum(c.n)
    return {
        status: int(total)
        for status, total in conn.execute(select(c.status, n).group_by(c.status).having(n != 0))
    }


def approved_counts(conn: Any, name: str) -> list[tuple[str, int]]:
    """Approved records per value of `name` (one of COUNTED_COLUMNS), most first, from the count tables."""
    c = record_counts.c
    n = func.sum(c.n)
    rows = conn.execute(
        select(c[name], n)
        .where(c.status == "approved")
        .group_by(c[name])
        .having(n != 0)
        .order_by(n.desc(), c[name])
    ).all()
    return [(value, int(total)) for value, total in rows]


def stats(engine: Engine) -> dict[str, Any]:
    """/v1/stats from the trigger-kept count tables: exact, and a few hundred rows read at any volume."""
    out: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(record_counts)).scalar_one()
            writable = not conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar()
        if rows > COMPACT_AFTER_ROWS and writable:  # not on a hot standby (the --read-db replica)
            with engine.begin() as conn:
                compact_counts(conn)
    with engine.connect() as conn:
        out["by_status"] = status_counts(conn)
        out["total"] = sum(out["by_status"].values())
        for name in COUNTED_COLUMNS:
            out[f"by_{name}"] = dict(approved_counts(conn, name))
        days = record_days.c
        day_total = func.sum(days.n)
        out["contributions_by_day"] = [
            {"day": d, "records": int(n)}
            for d, n in conn.execute(
                select(days.day, day_total).group_by(days.day).having(day_total != 0).order_by(days.day)
            ).all()
        ]
    return out
