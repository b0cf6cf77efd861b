"""GET /v1/records (filters, keyset pagination, formats), stats, donate, health and readiness."""

from __future__ import annotations

import csv
import io

import pytest

from .conftest import SEED_APPROVED, Server


def test_pagination_walks_every_approved_record_once(seeded_server: Server) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = seeded_server.http.get("/v1/records", params=params).json()
        seen += [r["id"] for r in body["records"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == SEED_APPROVED
    assert pages == -(-SEED_APPROVED // 7)


def test_filters(seeded_server: Server) -> None:
    get = seeded_server.http.get
    gender = get("/v1/records", params={"category": "gender", "limit": 1000}).json()["records"]
    assert len(gender) == SEED_APPROVED // 2 and {r["category"] for r in gender} == {"gender"}
    both = get("/v1/records", params=[("category", "gender"), ("category", "race"), ("limit", "1000")]).json()
    assert len(both["records"]) == SEED_APPROVED
    assert get("/v1/records", params={"category": "religion"}).json()["records"] == []  # pending only
    assert len(get("/v1/records", params={"q": "NUMBER 1:", "limit": 1000}).json()["records"]) == 2
    # LIKE wildcards in q are literal characters.
    assert get("/v1/records", params={"q": "%"}).json()["records"] == []
    assert get("/v1/records", params={"q": "_"}).json()["records"] == []
    assert (
        len(get("/v1/records", params={"strategy": "targeted", "limit": 1000}).json()["records"])
        == SEED_APPROVED
    )
    assert get("/v1/records", params={"provider": "nobody"}).json()["records"] == []
    assert set(gender[0]) == {
        "id",
        "text",
        "target",
        "attribute",
        "category",
        "strategy",
        "provider",
        "model",
        "created_at",
        "contributor",
    }


def test_formats(seeded_server: Server) -> None:
    csv_text = seeded_server.http.get("/v1/records", params={"format": "csv", "limit": 5}).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 5 and rows[0]["contributor"] == "seed"
    response = seeded_server.http.get("/v1/records", params={"format": "text", "limit": 5})
    assert len(response.text.splitlines()) == 5 and "X-Next-Cursor" in response.headers
    # Big pages are streamed; the result is the same.
    big = seeded_server.http.get("/v1/records", params={"limit": 1000}).json()
    assert len(big["records"]) == SEED_APPROVED and big["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "garbage"},
        {"category": "\x00"},
        {"q": "a\x00b"},
        {"cursor": "czE'; DROP"},
        {"limit": 0},
        {"limit": -5},
        {"format": "xml"},
        {"limit": "many"},
    ],
)
def test_bad_parameters(seeded_server: Server, params: dict[str, object]) -> None:
    response = seeded_server.http.get("/v1/records", params=params)
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]


def test_stats_donate_health(seeded_server: Server) -> None:
    stats = seeded_server.http.get("/v1/stats").json()
    assert stats["total"] == SEED_APPROVED + 10
    assert stats["by_status"] == {"approved": SEED_APPROVED, "pending": 10}
    assert stats["by_category"] == {"gender": SEED_APPROVED // 2, "race": SEED_APPROVED // 2}
    assert sum(d["records"] for d in stats["contributions_by_day"]) == stats["total"]
    donate = seeded_server.http.get("/v1/donate").json()
    assert set(donate) == {"url", "message"} and donate["message"]
    assert seeded_server.http.get("/healthz").json() == {"status": "ok"}
    ready = seeded_server.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = seeded_server.http.get("/v1/").json()
    assert info["limits"]["batch_size"] == seeded_server.settings.batch_size
    assert seeded_server.http.get("/openapi.json").json()["paths"]["/v1/records"]["put"]


def test_postgres_queries_run_under_the_read_only_role(seeded_server: Server) -> None:
    if seeded_server.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    body = seeded_server.http.get("/v1/query", params={"sql": "SELECT current_user AS u"}).json()
    assert body["rows"] == [["vdata_readonly"]]


@pytest.mark.postgres
def test_postgres_reads_survive_terminated_connections(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """GET reads on PostgreSQL use their own async connections: when the database drops them (restart,
    an operator terminating sessions), the next GET still answers, from fresh connections."""
    from sqlalchemy import text

    from .conftest import new_db_url, sample_records, start_server

    threaded, server = start_server(new_db_url("postgres", request, tmp_path_factory))
    try:
        body = server.http.put("/v1/records", json=sample_records(3)).json()
        for rid in body["accepted"]:
            assert server.moderate(rid).status_code == 200
        assert len(server.http.get("/v1/records").json()["records"]) == 3
        with server.engine.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            ).scalar()
        assert killed >= 1
        for _ in range(3):
            response = server.http.get("/v1/records")
            assert response.status_code == 200, response.text
            assert len(response.json()["records"]) == 3
    finally:
        server.close()
        threaded.__exit__(None, None, None)
