"""PUT /v1/records: validation, atomic batches, idempotency, dedup, and the size and rate limits."""

from __future__ import annotations

import json

import httpx

from vdata.core.records import record_id

from .conftest import Server, sample_records, start_server


def test_accepts_and_reports_duplicates(fresh_server: Server) -> None:
    batch = sample_records(5)
    batch.append({**batch[0], "text": "  " + batch[0]["text"].upper() + "  "})  # same normalised text
    response = fresh_server.http.put("/v1/records", json=batch, params={"contributor": "ann"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == [record_id(r["text"]) for r in batch[:5]]
    assert body["duplicates"] == [record_id(batch[0]["text"])]
    assert fresh_server.count("pending") == 5


def test_same_batch_twice_changes_nothing(fresh_server: Server) -> None:
    batch = sample_records(20)
    assert fresh_server.http.put("/v1/records", json=batch).status_code == 200
    before = fresh_server.snapshot()
    again = fresh_server.http.put("/v1/records", json=batch)
    assert again.status_code == 200
    assert again.json()["accepted"] == []
    assert len(again.json()["duplicates"]) == 20
    assert fresh_server.snapshot() == before


def test_server_recomputes_the_id(fresh_server: Server) -> None:
    forged = {**sample_records(1)[0], "id": "0000000000000000"}
    body = fresh_server.http.put("/v1/records", json=[forged]).json()
    assert body["accepted"] == [record_id(forged["text"])]


def test_one_invalid_record_stores_nothing(fresh_server: Server) -> None:
    batch = sample_records(10)
    batch[3] = {**batch[3], "strategy": "made-up"}
    batch[7] = {**batch[7], "category": "zodiac"}
    response = fresh_server.http.put("/v1/records", json=batch)
    assert response.status_code == 422
    body = response.json()
    assert "nothing was stored" in body["detail"]
    assert [e["index"] for e in body["errors"]] == [3, 7]
    assert "strategy" in body["errors"][0]["reason"] and "category" in body["errors"][1]["reason"]
    assert fresh_server.count() == 0


BAD_RECORDS: list[tuple[object, str]] = [
    ("just a string", "not a JSON object"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"no_text": "x"}, "text"),
    ({"text": "fine", "evil_field": 1}, "evil_field"),
    ({"text": 12345}, "text"),
    ({"text": "x" * 5000}, "text"),
    ({"text": "fine", "params": "not a dict"}, "params"),
    ({"text": "fine", "provider": "p" * 500}, "provider"),
    ({"text": "nul\u0000inside"}, "NUL"),
]


def test_each_kind_of_bad_record_is_named(fresh_server: Server) -> None:
    for bad, reason_word in BAD_RECORDS:
        payload = json.dumps([sample_records(1)[0], bad], ensure_ascii=True)
        response = fresh_server.http.put(
            "/v1/records", content=payload.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (bad, response.text)
        errors = response.json()["errors"]
        assert errors[0]["index"] == 1 and reason_word in errors[0]["reason"], (bad, errors)
    assert fresh_server.count() == 0


def test_malformed_bodies(fresh_server: Server) -> None:
    cases: list[tuple[bytes, int, str]] = [
        (b"\xff\xfe\x00[", 400, "UTF-8"),
        ('[{"text": "caf\xe9"}]'.encode("latin-1"), 400, "UTF-8"),
        (b"[{", 400, "JSON"),
        (b"", 400, "JSON"),
        (b"null", 422, "array"),
        (b'{"text": "an object, not an array"}', 422, "array"),
        (b"[1, 2, 3]", 422, "invalid"),
        (b"[" * 100_000, 400, "JSON"),
        (b'[{"text": "lone \\ud800 surrogate"}]', 400, "surrogate"),
    ]
    for body, status, word in cases:
        response = fresh_server.http.put(
            "/v1/records", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status, (body[:40], response.text)
        assert word in response.text, (body[:40], response.text)
    assert fresh_server.count() == 0
    assert fresh_server.http.get("/healthz").status_code == 200


def test_empty_array_is_fine(fresh_server: Server) -> None:
    response = fresh_server.http.put("/v1/records", json=[])
    assert response.status_code == 200 and response.json() == {
        "accepted": [],
        "duplicates": [],
        "rejected": [],
    }


def test_oversized_body_and_batch(fresh_server: Server) -> None:
    limit = fresh_server.settings.max_body_bytes
    big = json.dumps([{"text": "y" * 3000}] * (limit // 3000 + 2)).encode()
    response = fresh_server.http.put("/v1/records", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    # Chunked upload without Content-Length: counted while reading.
    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    response = fresh_server.http.put(
        "/v1/records", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413

    too_many = sample_records(fresh_server.settings.batch_size + 1)
    response = fresh_server.http.put("/v1/records", json=too_many)
    assert response.status_code == 413 and "batch" in response.json()["detail"]
    assert fresh_server.count() == 0


def test_bad_contributor(fresh_server: Server) -> None:
    assert fresh_server.http.put("/v1/records", json=[], params={"contributor": "x" * 101}).status_code == 422
    assert fresh_server.http.put("/v1/records", json=[], params={"contributor": "a\x07b"}).status_code == 422


def test_put_rate_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    threaded, server = start_server(f"sqlite:///{tmp_path / 'rate.sqlite3'}", put_rate=0.5, put_burst=3)
    try:
        statuses = [server.http.put("/v1/records", json=[]).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        limited = server.http.put("/v1/records", json=sample_records(1))
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert "retry" in limited.json()["detail"]
        assert server.count() == 0
        # Reads are never rate limited.
        assert server.http.get("/v1/records").status_code == 200
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_only_get_and_put(fresh_server: Server) -> None:
    for method in ("POST", "DELETE", "PATCH"):
        response = fresh_server.http.request(method, "/v1/records", json=[])
        assert response.status_code == 405
    assert isinstance(fresh_server.http, httpx.Client)


def test_stored_text_comes_back_exactly(fresh_server: Server) -> None:
    """GET's JSON is written by the database (json_object / json_build_object): awkward text must survive
    it byte for byte, and agree with the CSV page (written by Python)."""
    texts = [
        'The "quiet" nurse\\ was a brilliant engineer.',
        "La ingeniera, Zoë, was décisive — and kind. 🚀",
        "The man\twas gentle;\u00a0very gentle.",
    ]
    batch = [{**r, "text": t, "target": t.split()[1]} for r, t in zip(sample_records(3), texts, strict=True)]
    body = fresh_server.http.put("/v1/records", json=batch).json()
    assert len(body["accepted"]) == 3
    for rid in body["accepted"]:
        assert fresh_server.moderate(rid).status_code == 200
    page = fresh_server.http.get("/v1/records", params={"limit": 10})
    got = page.json()["records"]
    assert [r["text"] for r in got] == texts
    assert [r["target"] for r in got] == [t.split()[1] for t in texts]
    import csv
    import io

    rows = list(
        csv.DictReader(io.StringIO(fresh_server.http.get("/v1/records", params={"format": "csv"}).text))
    )
    assert rows == [{k: "" if v is None else v for k, v in r.items()} for r in got]
