"""The reader pages' statements: sorted keyset pages with filters and full-text search, facet counts,
growth over time, one record (SQLAlchemy Core, bound parameters only).

A page is found by its keyset (sort value, seq), never by OFFSET, so page 10,000 costs what page 1 does.
Counts (facets, the home page's totals) scan every matching row, so they are cached for a short while
(`TtlCache`): readers see counts at most `ttl_s` old.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    and_,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.sql import FromClause, Select

from vdata.core.records import PUBLIC_COLUMNS
from vdata.server import store
from vdata.server.db import record_store
from vdata.server.seq_search import SeqSearch, WalkFacts
from vdata.server.store import FULL_COLUMNS

# Columns a reader may sort /records by; "seq" is the order records were added (the default).
SORTABLE: tuple[str, ...] = ("seq", "created_at", "category", "strategy", "provider", "contributor")
FACETS: tuple[str, ...] = ("category", "strategy", "provider", "contributor")
FACET_LIMIT = 12  # values shown per facet (the most frequent)
FACET_SAMPLE = 10_000  # matching rows a filtered view's facets are counted over
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Filters:
    """What a /records URL selects (every field comes from the query string)."""

    category: tuple[str, ...] = ()
    strategy: str | None = None
    provider: str | None = None
    contributor: str | None = None
    date_from: date | None = None  # created_at on or after this day
    date_to: date | None = None  # created_at on or before this day
    q: str | None = None  # words that must all occur in the text

    def words(self) -> list[str]:
        return _WORD.findall(self.q or "")[:16]


# SQLite's full-text index: an FTS5 table whose rowid is record_store.seq (migration 0003).
records_fts = table("records_fts", column("rowid", Integer))
_FTS_MATCH = text("records_fts MATCH :fts_match")
# PostgreSQL's: the stored column record_store.text_tsv (migration 0003), not in the table's metadata.
_TEXT_TSV = literal_column("record_store.text_tsv")


def _fts_match(filters: Filters) -> str:
    # Each word quoted: FTS5 query syntax (AND, NEAR, column filters) never comes from the reader.
    return " ".join(f'"{w}"' for w in filters.words())


def _selection(filters: Filters, dialect: str) -> tuple[FromClause, ColumnElement[Any], list[Any]]:
    """(FROM clause, the seq column to order and page by, WHERE conditions) of the approved records
    `filters` selects.

    A SQLite search reads the FTS5 index first, joined to record_store, and orders by the index's rowid
    (= seq): FTS5 yields rowids in order, so a page stops after its rows instead of collecting every
    match first. PostgreSQL matches the stored tsvector with `@@`.
    """
    c = record_store.c
    words = filters.words()
    fts = bool(words) and dialect != "postgresql"
    # With a SQLite search, the status test is written so that no index of record_store can serve it:
    # otherwise SQLite may walk record_store and run the full-text query once per row.
    status = c.status + "" if fts else c.status
    where: list[Any] = [status == "approved"]
    if filters.category:
        where.append(c.category.in_(filters.category))
    for name in ("strategy", "provider", "contributor"):
        value = getattr(filters, name)
        if value is not None:
            where.append(c[name] == value)
    if filters.date_from:
        where.append(c.created_at >= filters.date_from.isoformat())
    if filters.date_to:
        where.append(c.created_at < (filters.date_to + timedelta(days=1)).isoformat())
    if fts:
        where.append(_FTS_MATCH.bindparams(fts_match=_fts_match(filters)))
        joined = records_fts.join(record_store, c.seq == records_fts.c.rowid)
        return joined, records_fts.c.rowid, where
    if words:
        where.append(_tsv_match(_TEXT_TSV, words))
    return record_store, c.seq, where


def _tsv_match(tsv: Any, words: list[str]) -> ColumnElement[Any]:
    return tsv.op("@@")(func.plainto_tsquery(literal_column("'simple'"), " ".join(words)))


# --------------------------------------------------------------------------------------- pages


def encode_cursor(value: Any, seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, seq])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int]:
    """(sort value, seq) of a page boundary; ValueError for a cursor the pages did not issue."""
    try:
        value, seq = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError) as e:
        raise ValueError("invalid cursor") from e
    if not isinstance(seq, int) or not isinstance(value, str | int):
        raise ValueError("invalid cursor")
    return value, seq


@dataclass(frozen=True)
class PageRequest:
    filters: Filters
    sort: str = "seq"
    descending: bool = False
    after: str | None = None  # cursor: the page after this boundary
    before: str | None = None  # cursor: the page before this boundary
    limit: int = 50

    @property
    def ascending(self) -> bool:
        """Whether its statement reads seq upwards: walking back from `before` reads the page in reverse
        order (the rows are flipped afterwards)."""
        return self.descending == (self.before is not None)


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # the page after this one, if any
    prev_cursor: str | None  # the page before this one, if any
    columns: tuple[str, ...] = PUBLIC_COLUMNS


def _page_statement(request: PageRequest, dialect: str, bound: int | None = None) -> Select[Any]:
    """The page's statement; `bound`: the last seq (in reading order) of a resumed search (seq_search.py)."""
    c = record_store.c
    source, seq_col, where = _selection(request.filters, dialect)
    key = seq_col if request.sort == "seq" else c[request.sort]
    ascending = request.ascending
    stmt = (
        select(c.seq, key.label("sort_key"), *(c[n] for n in PUBLIC_COLUMNS))
        .select_from(source)
        .where(*where)
    )
    boundary = request.before or request.after
    if boundary:
        value, seq = decode_cursor(boundary)
        if request.sort == "seq":
            stmt = stmt.where(seq_col > seq if ascending else seq_col < seq)
        elif ascending:
            stmt = stmt.where(or_(key > value, and_(key == value, seq_col > seq)))
        else:
            stmt = stmt.where(or_(key < value, and_(key == value, seq_col < seq)))
    if bound is not None:
        stmt = stmt.where(seq_col <= bound if ascending else seq_col >= bound)
    order = [key.asc(), seq_col.asc()] if ascending else [key.desc(), seq_col.desc()]
    if request.sort == "seq":
        order = order[1:]
        if dialect == "postgresql" and request.filters.words() and bound is None:
            # The last step after `_walk_statement`: the words are rare near the start, so the GIN
            # index finds their rows and they are sorted; `seq + 0` keeps the planner from walking the seq
            # index (it misjudges a rare word's count and may read every row: 10.5 s at 10M measured).
            order = [(seq_col + 0).asc() if ascending else (seq_col + 0).desc()]
    return stmt.order_by(*order).limit(request.limit + 1)


def _no_words(request: PageRequest) -> Select[Any]:
    """The (status, seq) walk in reading order, the filters but the words applied."""
    return _page_statement(replace(request, filters=replace(request.filters, q=None)), "postgresql")


def _walk(request: PageRequest, rows: int) -> Any:
    """The next `rows` rows of `_no_words`' walk, with their tsvector."""
    return _no_words(request).add_columns(_TEXT_TSV.label("text_tsv")).limit(rows).subquery("walk")


def _walk_statement(request: PageRequest, rows: int) -> Select[Any]:
    """PostgreSQL's walk for a word search in seq order: the tsvector test over `_walk`'s rows."""
    walk = _walk(request, rows)
    order = walk.c.seq.asc() if request.ascending else walk.c.seq.desc()
    columns = [walk.c.seq, walk.c.sort_key, *(walk.c[n] for n in PUBLIC_COLUMNS)]
    match = _tsv_match(walk.c.text_tsv, request.filters.words())
    return select(*columns).where(match).order_by(order).limit(request.limit + 1)


def _step_statement(request: PageRequest, dialect: str, search: SeqSearch) -> Select[Any]:
    """The statement of `search`'s current step (seq_search.py) for `request`."""
    if search.step == "walk":
        return _walk_statement(request, search.probe_rows)
    if search.step == "resume" and search.resume:
        boundary = encode_cursor(search.resume.after, search.resume.after)
        rest = search.wanted - len(search.rows) - 1  # the rest of the page (the statement asks one more)
        if request.before is not None:
            resumed = replace(request, before=boundary, limit=rest)
        else:
            resumed = replace(request, after=boundary, limit=rest)
        return _page_statement(resumed, dialect, search.resume.bound)
    return _page_statement(request, dialect)


def _walk_facts(conn: Any, request: PageRequest, rows: int) -> WalkFacts:
    """What the walk of `rows` rows read, and the approved rows of the filters' categories, strategy and
    provider (the count table's groups; the other filters are left out: an upper bound)."""
    walk = _no_words(request).with_only_columns(record_store.c.seq).limit(rows).subquery()
    low, high = func.min(walk.c.seq), func.max(walk.c.seq)
    filters = request.filters
    by = (len(filters.category), filters.strategy is not None, filters.provider is not None)
    params: dict[str, Any] = {
        "status": "approved",
        "strategy": filters.strategy,
        "provider": filters.provider,
    }
    params.update({f"category_{i}": c for i, c in enumerate(filters.category)})
    total = store.rows_statement(*by).scalar_subquery()
    first, last = (low, high) if request.ascending else (high, low)
    stmt = select(first, last, func.count(), total)
    return WalkFacts(*conn.execute(stmt, params).one())


def fetch_page(engine: Engine, request: PageRequest) -> Page:
    """One page of approved records in the requested order, with the cursors of its neighbours.
    A PostgreSQL word search in seq order goes in steps (seq_search.py)."""
    dialect = engine.dialect.name
    walking = dialect == "postgresql" and bool(request.filters.words()) and request.sort == "seq"
    search = SeqSearch(request.limit + 1, walking=walking)
    with engine.connect() as conn:
        while search.step:
            raw = list(conn.execute(_step_statement(request, dialect, search)).all())
            facts = _walk_facts(conn, request, search.probe_rows) if search.needs_facts(raw) else None
            search.add(raw, facts)
    raw = search.rows
    more = len(raw) > request.limit
    raw = raw[: request.limit]
    if request.before is not None:
        raw.reverse()
    rows = [dict(zip(PUBLIC_COLUMNS, r[2:], strict=True)) for r in raw]
    first = encode_cursor(raw[0][1], raw[0][0]) if raw else None
    last = encode_cursor(raw[-1][1], raw[-1][0]) if raw else None
    if request.before is not None:
        return Page(rows, next_cursor=last, prev_cursor=first if more else None)
    return Page(rows, next_cursor=last if more else None, prev_cursor=first if request.after else None)


def fetch_record(engine: Engine, record_id: str) -> dict[str, Any] | None:
    """Everything stored about one approved record; None when it is unknown, pending or rejected."""
    columns = [record_store.c[n] for n in (*FULL_COLUMNS, "content_sha256", "moderated_at")]
    stmt = select(*columns).where(record_store.c.id == record_id, record_store.c.status == "approved")
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    record = dict(row)
    for name in ("params", "attributes"):
        if record[name]:
            record[name] = orjson.loads(record[name])
    return record


# ------------------------------------------------------------------------------------- counts


def facet_counts(engine: Engine, filters: Filters) -> dict[str, Any]:
    """{"total": n, "facets": {column: [(value, n), ...]}, "sampled": bool, "counted": rows counted} for
    the approved records `filters` selects.

    Without filters each facet is one GROUP BY over its (status, column) index: exact, and cached by the
    caller. With filters the facets are counted over the first FACET_SAMPLE matching rows (one indexed
    read, counted here), so a broad filter or a common search word costs no more than a narrow one;
    `sampled` says when the counts cover only those rows. The total is always exact.
    """
    source, seq_col, where = _selection(filters, engine.dialect.name)
    c = record_store.c
    with engine.connect() as conn:
        if filters == Filters():
            facets: dict[str, list[tuple[str, int]]] = {}
            for name in FACETS:
                # Category, strategy and provider come from the count tables: a few hundred rows, where
                # a GROUP BY read every approved row (1 GB of index at 10^7 rows, on every refresh).
                if name in store.COUNTED_COLUMNS:
                    rows = store.approved_counts(conn, name)
                else:
                    n = func.count().label("n")
                    rows = conn.execute(
                        select(c[name], n).where(*where).group_by(c[name]).order_by(n.desc(), c[name])
                    ).all()
                facets[name] = [(value, count) for value, count in rows[:FACET_LIMIT]]
                if name == "category":
                    total = sum(count for _, count in rows)
            return {"total": total, "facets": facets, "sampled": False, "counted": total}
        sample = conn.execute(
            select(*(c[name] for name in FACETS))
            .select_from(source)
            .where(*where)
            .order_by(seq_col)
            .limit(FACET_SAMPLE + 1)
        ).all()
        sampled = len(sample) > FACET_SAMPLE
        sample = sample[:FACET_SAMPLE]
        total = (
            conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one()
            if sampled
            else len(sample)
        )
    counted = {name: Counter(row[i] for row in sample).most_common() for i, name in enumerate(FACETS)}
    facets = {
        name: sorted(pairs, key=lambda p: (-p[1], p[0]))[:FACET_LIMIT] for name, pairs in counted.items()
    }
    return {"total": total, "facets": facets, "sampled": sampled, "counted": len(sample)}


def overview(engine: Engine) -> dict[str, Any]:
    """The home page's figures: records by status, approved records by category/strategy/provider,
    and approved records per month (by the month they were submitted)."""
    c = record_store.c
    approved = c.status == "approved"
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        out["by_status"] = store.status_counts(conn)
        for name in store.COUNTED_COLUMNS:
            out[f"by_{name}"] = store.approved_counts(conn, name)
        month = func.substr(c.submitted_at, 1, 7)
        out["by_month"] = conn.execute(
            select(month, func.count()).where(approved).group_by(month).order_by(month)
        ).all()
    return out


@dataclass
class TtlCache:
    """Results of slow counts, per key, fresh for `ttl_s` seconds; at most `size` keys (least recently
    used dropped). A key never computed is computed by the first reader (under the key's own lock, so a
    burst of readers of one cold filter runs the count once); a stale one is served as it is while one
    background thread recomputes it, so no reader waits for a count the cache has seen before."""

    ttl_s: float = 30.0
    size: int = 512
    _entries: OrderedDict[Any, tuple[float, Any]] = field(default_factory=OrderedDict)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict)
    _refreshing: set[Any] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        if self.ttl_s <= 0:
            return compute()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                if time.monotonic() - hit[0] >= self.ttl_s and key not in self._refreshing:
                    self._refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
                return hit[1]
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None:
                return hit[1]
            value = compute()
            self._store(key, value)
            return value

    def peek(self, key: Any) -> Any | None:
        """The cached value of `key` (fresh or stale), or None: lets a caller skip a thread hop on a hit."""
        with self._lock:
            hit = self._entries.get(key)
        return None if hit is None else hit[1]

    def _refresh(self, key: Any, compute: Callable[[], Any]) -> None:
        try:
            self._store(key, compute())
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                old, _ = self._entries.popitem(last=False)
                self._locks.pop(old, None)
