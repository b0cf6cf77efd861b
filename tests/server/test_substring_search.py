"""`/v1/records?q=` through the trigram index (migration 0007): the same answer as the scan, pages by
keyset, the index is what serves a rare string, and it follows every write and a downgrade/upgrade. On
PostgreSQL both searches (this one and the /records word search) walk before they use an index
(seq_search.py), then resume over a seq range bounded by what the walk found: neither changes an answer,
a frequent word is answered by the walk or the resumed range, never by the index over every row."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, text, update

from vdata.core.records import Record
from vdata.server import browse, db, seq_search, store
from vdata.server.db import record_store

from .conftest import new_db_url, start_server
from .snapshot_helpers import downgrade, make_db

TEXTS = [
    "The NURSE was a brilliant engineer.",
    "A nurse and an engineer walked in.",
    "Nursery rhymes are for everyone.",
    'He said "no" to 50% of the offers_today.',
    "Café owners are often generous.",
    "An elderly man runs marathons.",
    "Engineers can be nurturing.",
    "ab",
]
QUERIES = [
    "nurse",
    "NURSE",
    "urs",
    "nur",
    "50%",
    "_to",
    "% o",
    '"no"',
    "café",
    "ab",
    "a",
    "x y z",
    "engineer",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return make_db(new_db_url(request.param, request, tmp_path_factory))


def put_texts(engine: Engine, texts: list[str], status: str = "approved") -> list[str]:
    records = [Record(text=t, target="someone", attribute="kind", category="gender") for t in texts]
    ids = store.put_records(engine, records, "tester").accepted
    with engine.begin() as conn:
        conn.execute(update(record_store).where(record_store.c.id.in_(ids)).values(status=status))
    return ids


def search(engine: Engine, q: str, limit: int = 2, indexed: bool | None = None) -> list[str]:
    """Every page of the substring search, `limit` rows a page; indexed=False forces the old scan."""
    seen: list[str] = []
    after = None
    while True:
        query = store.records_query(
            status="approved", columns=["id", "text"], q=q, after_seq=after, limit=limit
        )
        if indexed is False:
            query = store.PageQuery((*query.shape[:6], False, False, False), query.params, query.limit)
        rows, cursor = store.fetch_page(engine, query)
        seen += [r["text"] for r in rows]
        if cursor is None:
            return seen
        after = store.decode_cursor(cursor)


def test_indexed_search_answers_exactly_what_the_scan_does(engine: Engine) -> None:
    put_texts(engine, TEXTS)
    put_texts(engine, ["A pending nurse is not public."], status="pending")
    for q in QUERIES:
        assert search(engine, q) == search(engine, q, indexed=False), q
    assert search(engine, "nurse") == TEXTS[:3]  # in submission order; "Nursery" holds it; pending left out
    assert search(engine, "50%") == [TEXTS[3]] and search(engine, "5_%") == []  # wildcards are literal
    assert search(engine, "café") == [TEXTS[4]]
    assert search(engine, "ab") == ["ab"]  # under three characters: the scan


@pytest.mark.parametrize("margin", [0, 2])
@pytest.mark.parametrize("probe_rows", [1, 4, 5_000])
def test_the_walk_before_the_index_changes_no_answer(
    engine: Engine, probe_rows: int, margin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL walks PROBE_ROWS rows first, then resumes over a bounded range, then asks the index:
    however short the walk and however narrow the range (margin 0: an empty one), every page is the
    scan's (a full page from a step stands; otherwise the next step)."""
    monkeypatch.setattr(seq_search, "PROBE_ROWS", probe_rows)
    monkeypatch.setattr(seq_search, "RANGE_MARGIN", margin)
    monkeypatch.setattr(seq_search, "INDEX_MATCHES", 0)  # resume whenever the walk found something
    put_texts(engine, TEXTS + [f"{t} (copy {i})" for i in range(6) for t in TEXTS[:3]])
    for q in QUERIES:
        for limit in (1, 2, 50):
            assert search(engine, q, limit) == search(engine, q, limit, indexed=False), (q, limit)


def word_search(engine: Engine, words: str, descending: bool) -> list[str]:
    """Every page of the /records word search forwards, then every page backwards from the end."""
    seen: list[str] = []
    filters = browse.Filters(q=words)
    page = browse.fetch_page(engine, browse.PageRequest(filters, descending=descending, limit=2))
    while True:
        seen += [r["text"] for r in page.rows]
        if page.next_cursor is None:
            break
        request = browse.PageRequest(filters, descending=descending, after=page.next_cursor, limit=2)
        page = browse.fetch_page(engine, request)
    while page.prev_cursor is not None:
        request = browse.PageRequest(filters, descending=descending, before=page.prev_cursor, limit=2)
        page = browse.fetch_page(engine, request)
        seen += [r["text"] for r in page.rows]
    return seen


@pytest.mark.parametrize("margin", [0, 2])
@pytest.mark.parametrize("probe_rows", [1, 4, 5_000])
def test_the_walk_before_the_word_index_changes_no_page(
    engine: Engine, probe_rows: int, margin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same steps for the /records word search (PostgreSQL, seq order), both directions."""
    monkeypatch.setattr(seq_search, "RANGE_MARGIN", margin)
    monkeypatch.setattr(seq_search, "INDEX_MATCHES", 0)
    put_texts(engine, TEXTS + [f"{t} (copy {i})" for i in range(6) for t in TEXTS[:3]])
    for words in ("nurse", "engineer", "marathons", "nurse engineer", "none"):
        for descending in (False, True):
            monkeypatch.setattr(seq_search, "PROBE_ROWS", 0)  # no walk: the index statement alone
            expected = word_search(engine, words, descending)
            monkeypatch.setattr(seq_search, "PROBE_ROWS", probe_rows)
            assert word_search(engine, words, descending) == expected, (words, descending)


def run_steps(engine: Engine, query: store.PageQuery, search: seq_search.SeqSearch) -> list[str]:
    """Run `search`'s steps as the async reads do (store.step_sql); returns the steps taken."""
    taken = []
    with engine.connect() as conn:
        while search.step:
            taken.append(search.step)
            raw = conn.exec_driver_sql(*store.step_sql(engine.dialect, query, search)).fetchall()
            facts = None
            if search.needs_facts(raw):
                sql, params = store.walk_facts_sql(engine.dialect, query, search)
                facts = seq_search.WalkFacts(*conn.exec_driver_sql(sql, params).one())
            search.add(list(raw), facts)
    return taken


@pytest.mark.postgres
def test_a_frequent_word_is_answered_by_the_walk(postgres_cluster: Any) -> None:
    """The first step walks the (status, seq) order and stops at a full page, so a word in every other
    record never makes PostgreSQL collect and sort all its matches."""
    engine = make_db(postgres_cluster.create_database())
    put_texts(engine, [f"Record {i}: a {'nurse' if i % 2 else 'pilot'} at work." for i in range(400)])
    query = store.records_query(status="approved", columns=["id"], q="nurse", limit=20)
    search = store.page_search(query, "postgresql")
    sql, params = store.step_sql(engine.dialect, query, search)
    with engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))
    assert run_steps(engine, query, search) == ["walk"] and len(search.rows) == 21
    assert "trgm" not in plan and "Bitmap" not in plan, plan


@pytest.mark.postgres
def test_a_word_the_walk_finds_too_rarely_is_answered_by_the_resumed_range(
    postgres_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk that finds some matches but not a page resumes after its last row, bounded to the seq range
    that holds the rest of the page RANGE_MARGIN times over at that rate: the page comes from the walk and
    that range, and the index over every row is never asked. Same answer as the scan."""
    monkeypatch.setattr(seq_search, "INDEX_MATCHES", 39)  # as if its 40 matches were too many to sort
    engine = make_db(postgres_cluster.create_database())
    put_texts(engine, [f"Record {i}: a {'nurse' if i % 10 == 3 else 'pilot'} at work." for i in range(400)])
    query = store.records_query(status="approved", columns=["id", "text"], q="nurse", limit=20)
    search = seq_search.SeqSearch(21, walking=True, probe_rows=50)  # finds 5 of the 21 rows wanted
    assert run_steps(engine, query, search) == ["walk", "resume"]
    assert search.resume is not None and search.resume.bound - search.resume.after == 320  # 2 x 50 x 16 / 5
    assert [orjson.loads(r[1])["text"] for r in search.rows] == search_texts(engine, "nurse", 21)


def search_texts(engine: Engine, q: str, n: int) -> list[str]:
    return search(engine, q, limit=1000, indexed=False)[:n]


def test_the_index_follows_updates_deletes_and_migrations(engine: Engine) -> None:
    ids = put_texts(engine, TEXTS)
    with engine.begin() as conn:
        conn.execute(update(record_store).where(record_store.c.id == ids[5]).values(text="A quiet nurse."))
        conn.execute(delete(record_store).where(record_store.c.id == ids[0]))
    assert search(engine, "nurse") == [*TEXTS[1:3], "A quiet nurse."]
    assert search(engine, "marathon") == []
    check_index(engine)

    downgrade(engine, "0006_archive")
    assert not has_index(engine)
    assert search(engine, "nurse", indexed=False) == [*TEXTS[1:3], "A quiet nurse."]  # 0006's scan
    put_texts(engine, ["A nurse added while the index was gone."])
    db.upgrade(engine)  # builds the index over the rows already there
    assert has_index(engine)
    check_index(engine)
    assert search(engine, "nurse") == [
        *TEXTS[1:3],
        "A quiet nurse.",
        "A nurse added while the index was gone.",
    ]


def has_index(engine: Engine) -> bool:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%gin_trgm_ops%'"
        else:
            sql = "SELECT count(*) FROM sqlite_master WHERE name = 'records_trgm'"
        return bool(conn.execute(text(sql)).scalar_one())


def check_index(engine: Engine) -> None:
    """SQLite: FTS5's own check that the index matches record_store row for row (raises if not)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO records_trgm(records_trgm, rank) VALUES ('integrity-check', 1)"))


def plan(engine: Engine, q: str) -> str:
    """The database's plan for the API's page query (the SQL and parameters the server sends)."""
    query = store.records_query(status="approved", columns=["id"], q=q, limit=50)
    sql, params = store.json_page_sql(engine.dialect, query)
    explain = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    if engine.dialect.name == "postgresql":
        # As autovacuum would have by now: fold the GIN indexes' pending lists in. A just-filled table's
        # pending entries (up to gin_pending_list_limit) are costed as read in full; one CI run chose
        # the scan here, probably because autovacuum had not got there first (it did not on a rerun).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {sql}", params))


def test_a_rare_string_is_found_through_the_trigram_index(engine: Engine) -> None:
    for i in range(100):  # 20,000 records (fewer and PostgreSQL rightly prefers a scan), one rare
        texts = [f"Record {i}-{j}: an engineer can be a nurse and a parent." for j in range(200)]
        if i == 13:
            texts[77] = "Only this one mentions a zeppelin pilot."
        put_texts(engine, texts)
    how = plan(engine, "zeppelin")
    if engine.dialect.name == "postgresql":
        assert "Bitmap Index Scan" in how and "lower_idx" in how, how  # the partitions' GIN trigram indexes
    else:
        assert "VIRTUAL TABLE INDEX" in how, how
    assert search(engine, "ZEPPELIN", limit=50) == ["Only this one mentions a zeppelin pilot."]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_api_search_goes_through_the_index(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    threaded, server = start_server(new_db_url(backend, request, tmp_path_factory))
    try:
        body = [{"text": t, "target": "someone", "attribute": "kind", "category": "gender"} for t in TEXTS]
        accepted = server.http.put("/v1/records", json=body, params={"contributor": "t"}).json()["accepted"]
        for record_id in accepted:
            assert server.moderate(record_id).status_code == 200
        seen, cursor = [], None
        while True:  # one record a page: every page boundary goes through the index's keyset
            params = {"q": "NURSE", "limit": 1, **({"cursor": cursor} if cursor else {})}
            body = server.http.get("/v1/records", params=params).json()
            seen += [r["text"] for r in body["records"]]
            if not (cursor := body["next_cursor"]):
                break
        assert seen == TEXTS[:3]
    finally:
        server.close()
        threaded.__exit__(None, None, None)
