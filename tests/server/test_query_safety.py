"""Hostile SQL against /v1/query: every statement refused or bounded, nothing changed, server alive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vdata.core.fingerprint import sha256_files
from vdata.server.query import QueryRefused, check_sql
from vdata.server.serve import ThreadedServer
from vdata.server.snapshot import make_settings, take_snapshot

from .conftest import SEED_APPROVED, Server, server_settings

# Each must be refused with 400 (on both backends).
REFUSED: list[str] = [
    # writes
    "INSERT INTO records (id, text) VALUES ('x', 'y')",
    "UPDATE records SET text = 'pwned'",
    "DELETE FROM records",
    "UPDATE record_store SET status = 'approved'",
    "DELETE FROM record_store",
    "REPLACE INTO record_store (id) VALUES ('x')",
    "INSERT INTO record_store SELECT * FROM record_store",
    "MERGE INTO records USING stats ON true WHEN MATCHED THEN DELETE",
    # DDL
    "DROP TABLE record_store",
    "DROP VIEW records",
    "CREATE TABLE evil (x int)",
    "CREATE TEMP TABLE evil AS SELECT 1",
    "ALTER TABLE record_store ADD COLUMN evil int",
    "TRUNCATE record_store",
    "CREATE VIEW records2 AS SELECT * FROM record_store",
    "SELECT * INTO evil FROM records",
    # multi-statement
    "SELECT 1; DROP TABLE record_store",
    "SELECT * FROM records; DELETE FROM record_store",
    "SELECT 1;SELECT 2",
    # SQLite specials
    "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "DETACH DATABASE main",
    "PRAGMA writable_schema = 1",
    "PRAGMA table_info(record_store)",
    "PRAGMA query_only = 0",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT load_extension('libevil')",
    "VACUUM",
    "VACUUM INTO '/tmp/copy.db'",
    "REINDEX",
    "ANALYZE",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM sqlite_schema",
    "SELECT * FROM main.record_store",
    "SELECT * FROM temp.sqlite_master",
    "SELECT readfile('/etc/passwd')",
    "SELECT writefile('/tmp/x', 'y')",
    # PostgreSQL specials
    "SELECT pg_sleep(10)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM pg_shadow",
    "SELECT * FROM information_schema.tables",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT current_setting('data_directory')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT * FROM dblink('host=evil', 'select 1') AS t(x int)",
    "COPY record_store TO '/tmp/out.csv'",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'",
    "SET ROLE postgres",
    "RESET ROLE",
    "SET statement_timeout = 0",
    "BEGIN",
    "COMMIT",
    "GRANT ALL ON record_store TO PUBLIC",
    "LISTEN evil",
    "NOTIFY evil",
    "DO $$ BEGIN DELETE FROM record_store; END $$",
    "CALL evil()",
    "EXPLAIN ANALYZE DELETE FROM record_store",
    "SELECT * FROM records FOR UPDATE",
    "SELECT nextval('record_store_seq_seq')",
    "SELECT * FROM generate_series(1, 100000000)",
    # tables outside the public views
    "SELECT * FROM record_store",
    "SELECT text FROM records WHERE id IN (SELECT id FROM record_store WHERE status = 'pending')",
    "SELECT * FROM alembic_version",
    "WITH x AS (SELECT * FROM record_store) SELECT * FROM x",
    "WITH record_store AS (SELECT 1) SELECT * FROM record_store",
    "SELECT * FROM records UNION SELECT id, text, target, attribute, category, strategy, provider, model, created_at, contributor FROM record_store",
    # garbage
    "",
    "   ",
    "SELEC * FROM records",
    "SELECT * FROM records WHERE text = 'unterminated",
    "SELECT ?",
    "SELECT nosuchcolumn FROM records",
    "SELECT * FROM records WHERE text = 1 +",
]
# Refused by the database layer rather than the parser (still 400 with the reason).
DATABASE_ERRORS = {"SELECT ?", "SELECT nosuchcolumn FROM records"}

# Must be stopped by the time limit (or row limit) and answered promptly.
TIME_BOMBS: list[str] = [
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c",
    "SELECT count(*) FROM records a, records b, records c, records d, records e, records f",
    "SELECT count(*) FROM records a CROSS JOIN records b CROSS JOIN records c CROSS JOIN records d "
    "CROSS JOIN records e CROSS JOIN records f CROSS JOIN records g",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT sum(length(a.text)) FROM c, records a",
]

# Bounded by the row limit: answered with truncated=true, not materialised.
HUGE_RESULTS: list[str] = [
    "SELECT a.id, b.id, c.id FROM records a, records b, records c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
]


@dataclass
class QueryTarget:
    """Where the hostile SQL goes: the live database, or DuckDB over a snapshot of it (engine=snapshot)."""

    server: Server
    url: str
    params: dict[str, str] = field(default_factory=dict)
    snapshot_dir: Path | None = None

    def query(self, sql: str, **extra: str) -> Any:
        import httpx

        return httpx.get(f"{self.url}/v1/query", params={"sql": sql, **self.params, **extra}, timeout=30)

    def digest(self) -> tuple[str, str | None]:
        """The database's digest and, for the snapshot engine, one over every snapshot file."""
        files = sorted(self.snapshot_dir.rglob("*")) if self.snapshot_dir else []
        files = [p for p in files if p.is_file()]
        return self.server.snapshot(), sha256_files(files, self.snapshot_dir) if files else None


@pytest.fixture(scope="module", params=["live", "snapshot"])
def target(
    request: pytest.FixtureRequest, seeded_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueryTarget]:
    if request.param == "live":
        yield QueryTarget(seeded_server, seeded_server.url)
        return
    root = tmp_path_factory.mktemp("snapshots")
    take_snapshot(make_settings(db_url=seeded_server.settings.db_url, out_dir=root, settle_s=0))
    settings = server_settings(seeded_server.settings.db_url, snapshots_dir=root)
    with ThreadedServer(settings) as threaded:
        yield QueryTarget(seeded_server, threaded.url, {"engine": "snapshot"}, root)


@pytest.mark.parametrize("sql", REFUSED)
def test_parser_layer_or_database_refuses(target: QueryTarget, sql: str) -> None:
    before = target.digest()
    response = target.query(sql)
    assert response.status_code == 400, (sql, response.status_code, response.text)
    assert response.json()["detail"], "a refusal names its reason"
    assert target.digest() == before
    assert target.server.http.get("/healthz").status_code == 200


@pytest.mark.parametrize("sql", TIME_BOMBS)
def test_time_bombs_are_stopped(target: QueryTarget, sql: str) -> None:
    before = target.digest()
    started = time.monotonic()
    response = target.query(sql)
    elapsed = time.monotonic() - started
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "limit" in response.json()["detail"]
    # 1 s query limit plus generous slack for a loaded 2-core machine.
    assert elapsed < 10, f"{sql} took {elapsed:.1f} s"
    assert target.digest() == before
    assert target.query("SELECT 1 AS one").json()["rows"] == [[1]]


@pytest.mark.parametrize("sql", HUGE_RESULTS)
def test_huge_results_are_cut_at_row_limit(target: QueryTarget, sql: str) -> None:
    response = target.query(sql)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["truncated"] is True
    assert len(body["rows"]) == target.server.settings.query_row_limit


def test_legitimate_queries_work(seeded_server: Server) -> None:
    response = seeded_server.http.get(
        "/v1/query",
        params={"sql": "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY category"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["gender", SEED_APPROVED // 2], ["race", SEED_APPROVED // 2]]
    stats = seeded_server.http.get(
        "/v1/query", params={"sql": "SELECT status, SUM(n) AS n FROM stats GROUP BY status ORDER BY status"}
    ).json()
    assert dict((s, int(n)) for s, n in stats["rows"]) == {"approved": SEED_APPROVED, "pending": 10}
    cte = seeded_server.http.get(
        "/v1/query",
        params={"sql": "WITH g AS (SELECT * FROM records WHERE category = 'gender') SELECT COUNT(*) FROM g"},
    ).json()
    assert cte["rows"] == [[SEED_APPROVED // 2]]
    csv_text = seeded_server.http.get(
        "/v1/query", params={"sql": "SELECT id, category FROM records ORDER BY id LIMIT 3", "format": "csv"}
    ).text
    assert csv_text.splitlines()[0] == "id,category" and len(csv_text.splitlines()) == 4


def test_pending_records_invisible_to_sql(seeded_server: Server) -> None:
    body = seeded_server.http.get(
        "/v1/query", params={"sql": "SELECT COUNT(*) FROM records WHERE category = 'religion'"}
    ).json()
    assert body["rows"] == [[0]]
    body = seeded_server.http.get("/v1/query", params={"sql": "SELECT COUNT(*) FROM records"}).json()
    assert body["rows"] == [[SEED_APPROVED]]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "duckdb"])
@pytest.mark.parametrize("sql", [s for s in REFUSED if s not in DATABASE_ERRORS])
def test_parser_layer_alone_refuses_hostile_statements(sql: str, dialect: str) -> None:
    """Layer 1 on its own already refuses everything that is not a SELECT over the views."""
    with pytest.raises(QueryRefused):
        check_sql(sql, dialect)


# Statements that get past no parser: the database layer must refuse them on its own.
BYPASS_PARSER: list[str] = [
    "SELECT * FROM record_store",
    "DELETE FROM record_store",
    "UPDATE record_store SET status = 'approved'",
    "INSERT INTO record_store (id) VALUES ('x')",
    "DROP VIEW records",
    "CREATE TABLE evil (x int)",
]
SQLITE_ONLY_BYPASS = [
    "ATTACH DATABASE '/tmp/vdata-evil.db' AS evil",
    "PRAGMA query_only = 0",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT * FROM sqlite_master",
]
POSTGRES_ONLY_BYPASS = [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_authid",
    "SET ROLE postgres",
]


def test_database_layer_alone_refuses(seeded_server: Server) -> None:
    """Defence in depth: with the sqlglot layer bypassed, the read-only connection still refuses."""
    from vdata.server.query import run_postgres, run_sqlite

    before = seeded_server.snapshot()
    engine = seeded_server.engine
    if engine.dialect.name == "sqlite":
        path = engine.url.database or ""
        for sql in BYPASS_PARSER + SQLITE_ONLY_BYPASS:
            with pytest.raises(QueryRefused):
                run_sqlite(path, sql, 1.0, 10)
        assert run_sqlite(path, "SELECT COUNT(*) FROM records", 1.0, 10).rows == [(SEED_APPROVED,)]
    else:
        role = seeded_server.settings.readonly_role
        for sql in BYPASS_PARSER + POSTGRES_ONLY_BYPASS:
            with pytest.raises(QueryRefused):
                run_postgres(engine.raw_connection, sql, 1.0, 10, role)
        # Settings changes are allowed to the role but die with the always-rolled-back transaction.
        run_postgres(
            engine.raw_connection,
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            1.0,
            10,
            role,
        )
        with pytest.raises(QueryRefused):
            run_postgres(engine.raw_connection, "SELECT * FROM record_store", 1.0, 10, role)
        assert run_postgres(engine.raw_connection, "SELECT COUNT(*) FROM records", 1.0, 10, role).rows == [
            (SEED_APPROVED,)
        ]
    assert seeded_server.snapshot() == before
