"""`/v1/records?q=` through the trigram index (migration 0007): the same answer as the scan, pages by
keyset, the index is what serves a rare string, and it follows every write and a downgrade/upgrade."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, delete, text, update

from vdata.core.records import Record
from vdata.server import db, store
from vdata.server.db import record_store

from .conftest import new_db_url, start_server
from .snapshot_helpers import make_db

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
            query = store.PageQuery((*query.shape[:-1], False), query.params, query.limit)
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


def test_the_index_follows_updates_deletes_and_migrations(engine: Engine) -> None:
    ids = put_texts(engine, TEXTS)
    with engine.begin() as conn:
        conn.execute(update(record_store).where(record_store.c.id == ids[5]).values(text="A quiet nurse."))
        conn.execute(delete(record_store).where(record_store.c.id == ids[0]))
    assert search(engine, "nurse") == [*TEXTS[1:3], "A quiet nurse."]
    assert search(engine, "marathon") == []
    check_index(engine)

    url = engine.url.render_as_string(hide_password=False)
    config = db.alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006_archive")
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
