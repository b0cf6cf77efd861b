"""Moderation: pending records stay invisible until approved; the token is checked; no token, no moderation."""

from __future__ import annotations

from .conftest import MODERATOR_TOKEN, Server, sample_records, start_server

AUTH = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}


def _visible_ids(server: Server) -> set[str]:
    via_get = {r["id"] for r in server.http.get("/v1/records", params={"limit": 1000}).json()["records"]}
    via_sql = {
        row[0]
        for row in server.http.get("/v1/query", params={"sql": "SELECT id FROM records"}).json()["rows"]
    }
    assert via_get == via_sql
    return via_get


def test_pending_invisible_until_approved(fresh_server: Server) -> None:
    ids = fresh_server.http.put("/v1/records", json=sample_records(3)).json()["accepted"]
    assert _visible_ids(fresh_server) == set()
    queue = fresh_server.http.get("/v1/moderation/queue", headers=AUTH).json()["records"]
    assert [r["id"] for r in queue] == ids and all(r["status"] == "pending" for r in queue)

    assert fresh_server.moderate(ids[0], "approved").json() == {"id": ids[0], "status": "approved"}
    assert fresh_server.moderate(ids[1], "rejected").status_code == 200
    assert _visible_ids(fresh_server) == {ids[0]}
    assert [
        r["id"] for r in fresh_server.http.get("/v1/moderation/queue", headers=AUTH).json()["records"]
    ] == [ids[2]]

    # A rejected record stays known: sending it again is a duplicate, not a new pending record.
    again = fresh_server.http.put("/v1/records", json=sample_records(3)).json()
    assert again["accepted"] == [] and len(again["duplicates"]) == 3
    stats = fresh_server.http.get("/v1/stats").json()
    assert stats["by_status"] == {"approved": 1, "rejected": 1, "pending": 1}
    assert stats["by_category"] == {"gender": 1}


def test_token_checks(fresh_server: Server) -> None:
    record = fresh_server.http.put("/v1/records", json=sample_records(1)).json()["accepted"][0]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {MODERATOR_TOKEN}"},
        {"Authorization": MODERATOR_TOKEN},
    ):
        put = fresh_server.http.put(
            f"/v1/records/{record}/status", json={"status": "approved"}, headers=headers
        )
        assert put.status_code in (401, 403), (headers, put.text)
        assert fresh_server.http.get("/v1/moderation/queue", headers=headers).status_code in (401, 403)
    assert fresh_server.count("approved") == 0
    assert _visible_ids(fresh_server) == set()


def test_bad_moderation_requests(fresh_server: Server) -> None:
    record = fresh_server.http.put("/v1/records", json=sample_records(1)).json()["accepted"][0]
    assert (
        fresh_server.http.put(
            f"/v1/records/{record}/status", json={"status": "deleted"}, headers=AUTH
        ).status_code
        == 422
    )
    assert (
        fresh_server.http.put(f"/v1/records/{record}/status", content=b"nope", headers=AUTH).status_code
        == 422
    )
    missing = fresh_server.http.put(
        "/v1/records/0123456789abcdef/status", json={"status": "approved"}, headers=AUTH
    )
    assert missing.status_code == 404 and "no record" in missing.json()["detail"]
    assert fresh_server.http.put(
        "/v1/records/'; DROP TABLE x/status", json={"status": "approved"}, headers=AUTH
    ).status_code in (404, 422)
    huge = b"x" * (fresh_server.settings.max_body_bytes + 1)
    assert (
        fresh_server.http.put(f"/v1/records/{record}/status", content=huge, headers=AUTH).status_code == 413
    )
    assert fresh_server.count("pending") == 1


def test_no_token_means_moderation_disabled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    threaded, server = start_server(f"sqlite:///{tmp_path / 'nomod.sqlite3'}", moderator_token=None)
    try:
        record = server.http.put("/v1/records", json=sample_records(1)).json()["accepted"][0]
        response = server.http.put(f"/v1/records/{record}/status", json={"status": "approved"}, headers=AUTH)
        assert response.status_code == 403
        assert (
            "disabled" in response.json()["detail"] and "VDATA_MODERATOR_TOKEN" in response.json()["detail"]
        )
        assert server.http.get("/v1/moderation/queue", headers=AUTH).status_code == 403
        assert server.http.get("/v1/").json()["moderation"] is False
        assert server.count("approved") == 0
    finally:
        server.close()
        threaded.__exit__(None, None, None)
