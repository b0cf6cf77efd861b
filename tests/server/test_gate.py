"""The contribution gate: a report on every PUT batch, made after the response by a worker process, with
the operator's auto-reject rules applied through the moderation log (never silently)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from vdata.server.moderation_store import moderation_log
from vdata.server.settings import parse_auto_reject

from .conftest import MODERATOR_TOKEN, Server, new_db_url, start_server

RULES = ("duplicates", "benchmark-overlap", "refusals")
COLOURS = ("red", "blue", "green", "black", "white", "pink", "brown", "orange", "purple", "yellow")
CROWS_SENTENCE = "The poor are really ignorant about how to handle the money they do have."


def _record(text: str, attribute: str, target: str = "") -> dict[str, Any]:
    return {
        "text": text,
        "target": target,
        "attribute": attribute,
        "category": "gender",
        "strategy": "targeted",
        "provider": "test",
        "model": "none",
    }


# The public data: "strong" goes with women 8 times out of 10 (women are 8 of the 15 gendered records),
# "gentle" with men 5 times out of 5.
PUBLIC = (
    [_record(f"The woman in {c} is strong.", "strong", "woman") for c in COLOURS[:8]]
    + [_record(f"The man in {c} is strong.", "strong", "man") for c in COLOURS[8:10]]
    + [_record(f"The man in {c} is gentle.", "gentle", "man") for c in COLOURS[:5]]
)
# The crafted batch, by what the gate must find.
DUPLICATE = _record("The woman in red is strong!", "strong", "woman")  # same words as a public record
REFUSAL = _record("I'm sorry, but I cannot write sentences about women.", "", "women")
OVERLAP = _record(CROWS_SENTENCE, "", "poor")  # a CrowS-Pairs sentence
AGAINST = _record("The man in grey is strong.", "strong", "man")  # public: strong goes with women
ALONG = _record("Every woman on the team is strong.", "strong", "woman")
CLEAN = _record("Grandparents teach the neighbourhood children to build robots each winter.", "build robots")
BATCH = [DUPLICATE, REFUSAL, OVERLAP, AGAINST, ALONG, CLEAN]


def _id(http: httpx.Client, records: list[dict[str, Any]], contributor: str) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    response = http.put("/v1/records", json=records, params={"contributor": contributor})
    assert response.status_code == 200, response.text
    return response.json(), time.perf_counter() - start


def wait_report(http: httpx.Client, url: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = http.get(url).json()
        if body["report"]["status"] not in ("pending", "running"):
            return body
        assert time.monotonic() < deadline, f"the gate's report on {url} is still pending"
        time.sleep(0.3)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    threaded, server = start_server(new_db_url(request.param, request, tmp_path_factory), auto_reject=RULES)
    try:
        body, _ = _id(server.http, PUBLIC, "public")
        for record_id in body["accepted"]:
            assert server.moderate(record_id).status_code == 200
        wait_report(server.http, body["contribution"]["url"])
        yield server
    finally:
        server.close()
        threaded.__exit__(None, None, None)


@pytest.fixture(scope="module")
def crafted(gated: Server) -> dict[str, Any]:
    put, _ = _id(gated.http, BATCH, "crafted")
    return {"put": put, "view": wait_report(gated.http, put["contribution"]["url"])}


def test_put_answers_before_the_report_and_says_where_it_will_be(
    gated: Server, crafted: dict[str, Any]
) -> None:
    contribution = crafted["put"]["contribution"]
    assert len(crafted["put"]["accepted"]) == len(BATCH)
    assert contribution["report"] == "pending"
    assert contribution["url"] == f"/v1/contributions/{contribution['id']}"
    assert contribution["auto_reject"] == list(RULES)
    assert "rejects" in contribution["note"]


def test_report_flags_the_crafted_records(crafted: dict[str, Any]) -> None:
    view = crafted["view"]
    ids = crafted["put"]["accepted"]
    flags = {r["id"]: {f["kind"] for f in r["flags"]} for r in view["records"]}
    dup, refusal, overlap, against, along, clean = ids
    assert "duplicate" in flags[dup]
    assert "refusal" in flags[refusal]
    assert "benchmark" in flags[overlap]
    assert flags[against] == flags[along] == flags[clean] == set()
    counts = view["report"]["flag_counts"]
    assert counts["duplicate"] == 1 and counts["refusal"] == 1 and counts["benchmark"] == 1


def test_report_direction_and_balance_against_the_public_data(crafted: dict[str, Any]) -> None:
    report = crafted["view"]["report"]
    direction = report["direction"]
    # Along the public skew: the duplicate and ALONG (woman + strong: lift 0.8 / (8/15) = 1.5);
    # against it: AGAINST (man + strong: lift 0.2 / (7/15) = 0.43).
    assert (direction["along"], direction["against"], direction["neutral"]) == (2, 1, 0)
    gender = report["groups"]["gender"]
    assert gender["public"]["female"] == 8 and gender["public"]["male"] == 7
    # Batch: DUPLICATE, REFUSAL (women), ALONG mention women; AGAINST mentions a man.
    assert gender["batch"]["female"] == 3 and gender["batch"]["male"] == 1
    assert gender["evenness_change"] < 0  # more women than men in an already female-leaning dataset
    recommendation = report["recommendation"]
    assert recommendation["action"] == "review"
    assert any("rejected automatically" in why for why in recommendation["why"])


def test_auto_reject_reasons_are_visible_and_logged(gated: Server, crafted: dict[str, Any]) -> None:
    dup, refusal, overlap, against, along, clean = crafted["put"]["accepted"]
    records = {r["id"]: r for r in crafted["view"]["records"]}
    expected = {dup: "duplicates", refusal: "refusals", overlap: "benchmark-overlap"}
    for record_id, rule in expected.items():
        record = records[record_id]
        assert record["status"] == "rejected"
        assert record["decision"]["by"] == "auto-gate"
        assert record["decision"]["reason"].startswith(f"auto-reject ({rule}): ")
    for record_id in (against, along, clean):
        assert records[record_id]["status"] == "pending" and records[record_id]["decision"] is None
    assert crafted["view"]["by_status"] == {"rejected": 3, "pending": 3}
    assert {x["id"]: x["rule"] for x in crafted["view"]["report"]["auto_rejected"]} == expected
    # Never silently: every rejection is in the append-only moderation log with its reason.
    with gated.engine.connect() as conn:
        logged = {
            row.record_id: row.reason
            for row in conn.execute(select(moderation_log).where(moderation_log.c.moderator == "auto-gate"))
        }
    assert set(logged) == set(expected)
    assert all(reason.startswith("auto-reject (") for reason in logged.values())


def test_moderators_see_the_report(gated: Server, crafted: dict[str, Any]) -> None:
    batch_id = crafted["put"]["contribution"]["id"]
    queue = gated.http.get(
        "/v1/moderation/batches", headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"}
    ).json()["batches"]
    ours = next(b for b in queue if b["batch"] == batch_id)
    assert ours["report"]["status"] == "done"
    assert ours["report"]["report"]["recommendation"]["action"] == "review"
    assert len(ours["records"]) == 3  # the three auto-rejected records left the queue
    browser = _signed_in(gated)
    try:
        page = browser.get("/moderate").text
    finally:
        browser.close()
    assert "Automatic report: review" in page
    assert "Rejected automatically (duplicates, benchmark-overlap, refusals)" in page
    assert "Stereotype direction (against 15 public records): too few pairings to judge" in page


def _signed_in(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    page = client.get("/signin")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/signin", data={"token": MODERATOR_TOKEN, "csrf": csrf})
    assert response.status_code == 303, response.text
    return client


def test_unknown_contribution_is_404_and_malformed_id_422(gated: Server) -> None:
    assert gated.http.get("/v1/contributions/0123456789abcdef").status_code == 404
    assert gated.http.get("/v1/contributions/nothex").status_code == 422


def test_gate_off_says_so_and_stores_no_report(tmp_path_factory: pytest.TempPathFactory) -> None:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('off') / 's.sqlite3'}"
    threaded, server = start_server(db_url, gate=False)
    try:
        put, _ = _id(server.http, [CLEAN], "x")
        assert put["contribution"]["report"] == "off"
        view = server.http.get(put["contribution"]["url"]).json()
        assert view["report"] == {"status": "off"}
        assert view["records"][0]["status"] == "pending"
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_auto_reject_rules_are_checked() -> None:
    assert parse_auto_reject("duplicates, refusals,duplicates") == ("duplicates", "refusals")
    with pytest.raises(Exception, match=r"unknown rule 'dupes'.*choose from duplicates"):
        parse_auto_reject("dupes")


def test_push_reports_the_contribution_urls(gated: Server) -> None:
    from vdata.core.records import Record
    from vdata.server.client import push_records

    records = [
        Record(**_record(f"Grandmothers in town {c} repair bicycles for the whole street.", ""))
        for c in COLOURS[:2]
    ]
    report = push_records(records, gated.url, batch_size=1, contributor="pusher")
    assert len(report.contributions) == 2
    for url in report.contributions:
        assert url.startswith(f"{gated.url}/v1/contributions/")
        body = httpx.get(url, timeout=30).json()
        assert body["contributor"] == "pusher" and body["n_records"] == 1
