"""The app's wiring: each route registered once, GET /v1/records parameters declared once (a model)."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute

from vdata.server.app import create_app
from vdata.server.routers.records import MAX_CATEGORIES, RecordsQuery
from vdata.server.settings import ServerSettings

from .conftest import Server


def test_every_route_is_registered_once(tmp_path: Path) -> None:
    app = create_app(ServerSettings(db_url=f"sqlite:///{tmp_path / 's.sqlite3'}"))
    pairs = [(r.path, m) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    assert len(pairs) == len(set(pairs))
    assert pairs.count(("/v1/records", "GET")) == 1


def test_records_parameters_in_openapi_come_from_the_model(tmp_path: Path) -> None:
    app = create_app(ServerSettings(db_url=f"sqlite:///{tmp_path / 's.sqlite3'}"))
    parameters = app.openapi()["paths"]["/v1/records"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == list(RecordsQuery.model_fields)
    by_name = {p["name"]: p["schema"] for p in parameters}
    assert by_name["category"]["maxItems"] == MAX_CATEGORIES
    assert by_name["category"]["items"]["maxLength"] == 200
    assert (by_name["limit"]["minimum"], by_name["limit"]["maximum"]) == (1, 100_000)
    assert by_name["format"]["enum"] == ["json", "csv", "text"]


def test_bad_records_parameters_get_fastapis_422(seeded_server: Server) -> None:
    response = seeded_server.http.get("/v1/records", params={"limit": "many", "format": "xml"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {tuple(e["loc"]) for e in errors} == {("query", "limit"), ("query", "format")}
    too_many = [("category", "gender")] * (MAX_CATEGORIES + 1)
    assert seeded_server.http.get("/v1/records", params=too_many).status_code == 422
    # Empty values mean "no filter", as before.
    body = seeded_server.http.get("/v1/records", params={"strategy": "", "q": "", "cursor": ""}).json()
    assert len(body["records"]) > 0
