"""The reader pages over real HTTP on both backends: content, pagination, filters, search, security.

Browser behaviour (no script runs, JavaScript disabled) is in tests/browser/test_pages_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, new_db_url, sample_records, start_server

# Contributed text is hostile: each of these must come out inert on every page.
XSS_TEXTS: tuple[str, ...] = (
    "<script>alert('xss-script')</script> is what nurses write",
    '"><img src=x onerror=alert(1)> engineers can be anyone',
    "javascript:alert(document.cookie) says the doctor",
    "the \u202egnirts desrever\u202c nurse is kind",
    # The longest word a record can hold (texts are at most 4,000 characters; 10 kB cannot be stored).
    "lawyer " + "W" * 3_990,
)
HOSTILE_CONTRIBUTOR = '<b onmouseover="alert(2)">mallory</b>'


def _hostile_records() -> list[dict[str, Any]]:
    return [
        {
            "text": text,
            "target": '<svg onload="alert(3)">',
            "attribute": "javascript:alert(4)",
            "category": "race",
            "strategy": "targeted",
            "provider": "<iframe src=//evil>",
            "model": "m",
            "params": {"temperature": 0.7, "note": "</script><script>alert(5)</script>"},
        }
        for text in XSS_TEXTS
    ]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pages_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """60 approved records over two categories and two contributors, 5 hostile approved records, and
    5 pending ones; the audit report setting points at a small report.json."""
    report = tmp_path_factory.mktemp("audit") / "report.json"
    report.write_text(
        json.dumps(
            {
                "n_records": 65,
                "groups_summary": {"share_with_any_group": 0.81, "mean_entropy": 1.25},
                "diversity": {"self_bleu": 0.333, "vocab_size": 412},
                "direction": {"measured": False, "reason": "no target model was given"},
            }
        )
    )
    threaded, server = start_server(
        new_db_url(request.param, request, tmp_path_factory), audit_report=report, count_cache_s=0
    )
    try:
        batches = [
            (sample_records(30, "Alpha", "gender"), "alice"),
            (sample_records(30, "Beta", "religion"), "bob"),
            (_hostile_records(), HOSTILE_CONTRIBUTOR),
        ]
        for records, contributor in batches:
            response = server.http.put("/v1/records", json=records, params={"contributor": contributor})
            assert response.status_code == 200, response.text
            for record_id in response.json()["accepted"]:
                assert server.moderate(record_id).status_code == 200
        pending = server.http.put(
            "/v1/records",
            json=sample_records(5, "Secretpending", "age"),
            params={"contributor": "zed-pending"},
        )
        server.pending_ids = pending.json()["accepted"]  # type: ignore[attr-defined]
        yield server
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def _ids(html: str) -> list[str]:
    return re.findall(r'<td class="id"><a href="/records/([0-9a-f]{16})">', html)


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _walk(server: Server, url: str) -> list[str]:
    """Every record id of a view, following the Next links from `url`."""
    ids: list[str] = []
    while url:
        response = server.http.get(url)
        assert response.status_code == 200, response.text
        ids += _ids(response.text)
        url = _link(response.text, "next") or ""
    return ids


def test_security_headers_on_every_page(pages_server: Server) -> None:
    record_id = _ids(pages_server.http.get("/records").text)[0]
    for path in (
        "/",
        "/records",
        f"/records/{record_id}",
        "/records/0000000000000000",
        "/sql?q=SELECT+1",
        "/static/vdata.css",
        "/v1/records",
    ):
        headers = pages_server.http.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
    docs = pages_server.http.get("/docs").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs


def test_pages_render_hostile_text_inert(pages_server: Server) -> None:
    html = pages_server.http.get("/records", params={"category": "race"}).text
    hostile_ids = _ids(html)
    assert len(hostile_ids) == len(XSS_TEXTS)
    pages = [html, pages_server.http.get("/").text]
    pages += [pages_server.http.get(f"/records/{rid}").text for rid in hostile_ids]
    pages.append(pages_server.http.get("/sql", params={"q": "SELECT text, target FROM records"}).text)
    for page in pages:
        assert "<script>alert" not in page and "</script><script>" not in page
        assert "<img src=x" not in page and "<svg onload" not in page and "<iframe" not in page
        assert "<b onmouseover" not in page
        assert 'href="javascript:' not in page
        # Scripts only from the server's own files.
        assert re.findall(r"<script(?![^>]*\ssrc=\"/static/)", page) == []
    record_page = pages[2]
    assert "&lt;script&gt;alert(&#39;xss-script&#39;)&lt;/script&gt;" in pages[0]
    assert "&lt;/script&gt;&lt;script&gt;alert(5)" in "".join(pages[2:-1])
    assert "mallory" in record_page
    # Bidi control characters stay inside an isolating <bdi>.
    assert re.search(r"<bdi>[^<]*\u202e", html)


def test_pending_records_are_not_shown(pages_server: Server) -> None:
    for record_id in pages_server.pending_ids:  # type: ignore[attr-defined]
        assert pages_server.http.get(f"/records/{record_id}").status_code == 404
    listing = pages_server.http.get("/records", params={"limit": 200}).text
    assert "Secretpending" not in listing and "zed-pending" not in listing
    assert pages_server.http.get("/records", params={"q": "secretpending"}).text.count('class="id"') == 0
    assert "Secretpending" not in pages_server.http.get("/").text


def test_keyset_pages_cover_every_record_once_in_every_sort(pages_server: Server) -> None:
    everything = _walk(pages_server, "/records?limit=25")
    assert len(everything) == len(set(everything)) == 65
    for sort in ("category", "contributor", "created_at", "provider", "strategy"):
        for direction in ("asc", "desc"):
            walked = _walk(pages_server, f"/records?limit=25&sort={sort}&dir={direction}")
            assert sorted(walked) == sorted(everything), (sort, direction)
    page = pages_server.http.get("/records?format=json&limit=200&sort=category&dir=desc").json()
    values = [r["category"] for r in page["records"]]
    assert values == sorted(values, reverse=True) and len(values) == 65


def test_previous_link_returns_the_previous_page(pages_server: Server) -> None:
    first = pages_server.http.get("/records?limit=25&sort=contributor").text
    second = pages_server.http.get(_link(first, "next") or "").text
    assert _ids(second) and set(_ids(second)).isdisjoint(_ids(first))
    back = pages_server.http.get(_link(second, "prev") or "").text
    assert _ids(back) == _ids(first)
    assert _link(first, "prev") is None


def test_filters_and_facets(pages_server: Server) -> None:
    html = pages_server.http.get("/records", params={"contributor": "alice", "limit": 100}).text
    assert len(_ids(html)) == 30
    assert "<strong>30</strong> matching records" in html
    page = pages_server.http.get(
        "/records", params={"category": ["gender", "religion"], "format": "json", "limit": 100}
    ).json()
    assert len(page["records"]) == 60
    today = pages_server.http.get("/records", params={"format": "json"}).json()["records"][0]["created_at"][
        :10
    ]
    assert (
        len(
            pages_server.http.get(
                "/records", params={"from": today, "to": today, "format": "json", "limit": 100}
            ).json()["records"]
        )
        == 65
    )
    assert (
        pages_server.http.get("/records", params={"to": "2000-01-01", "format": "json"}).json()["records"]
        == []
    )
    # Facet counts cover approved records only.
    home = pages_server.http.get("/records").text
    assert re.search(r"<bdi>gender</bdi></a>\s*<span class=\"num\">30</span>", home)
    assert re.search(r"<bdi>race</bdi></a>\s*<span class=\"num\">5</span>", home)


def test_search_matches_words_and_refuses_no_query_syntax(pages_server: Server) -> None:
    found = pages_server.http.get("/records", params={"q": "Beta religion", "format": "json", "limit": 100})
    assert len(found.json()["records"]) == 30
    assert all("Beta" in r["text"] for r in found.json()["records"])
    for hostile in ('"', "NEAR(a b)", "nurse*", "-x OR y", "text:foo", "'; DROP TABLE x; --", "\u202e"):
        assert pages_server.http.get("/records", params={"q": hostile}).status_code == 200, hostile


def test_json_and_csv_give_the_page_rows(pages_server: Server) -> None:
    params = {"category": "gender", "limit": 25, "sort": "created_at", "dir": "desc"}
    html_ids = _ids(pages_server.http.get("/records", params=params).text)
    as_json = pages_server.http.get("/records", params={**params, "format": "json"}).json()
    as_csv = list(
        csv.DictReader(
            io.StringIO(pages_server.http.get("/records", params={**params, "format": "csv"}).text)
        )
    )
    assert [r["id"] for r in as_json["records"]] == [r["id"] for r in as_csv] == html_ids
    assert as_json["next_cursor"]


def test_bad_parameters_get_a_plain_400(pages_server: Server) -> None:
    for params, reason in (
        ({"sort": "text"}, "cannot sort by"),
        ({"from": "yesterday"}, "use YYYY-MM-DD"),
        ({"after": "not-a-cursor"}, "invalid page cursor"),
        ({"limit": "7"}, "limit must be one of"),
    ):
        response = pages_server.http.get("/records", params=params)
        assert response.status_code == 400 and reason in response.text, params
    assert pages_server.http.get("/records", params={"sort": "x", "format": "json"}).json()["detail"]


def test_record_page_shows_provenance(pages_server: Server) -> None:
    record = pages_server.http.get("/records", params={"contributor": "alice", "format": "json"}).json()[
        "records"
    ][0]
    html = pages_server.http.get(f"/records/{record['id']}").text
    for value in (
        record["text"],
        record["target"],
        record["attribute"],
        "gender",
        "targeted",
        "alice",
        record["created_at"],
        "approved",
        "content hash",
    ):
        assert value in html, value
    assert pages_server.http.get("/records/" + "x" * 300).status_code == 404


def test_sql_console_runs_and_refuses(pages_server: Server) -> None:
    ok = pages_server.http.get(
        "/sql",
        params={"q": "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY category"},
    )
    assert ok.status_code == 200
    assert "<td><bdi>gender</bdi></td><td><bdi>30</bdi></td>" in ok.text
    assert "/v1/query?sql=SELECT" in ok.text and "format=csv" in ok.text
    refused = pages_server.http.get("/sql", params={"q": "DELETE FROM records"})
    assert refused.status_code == 400
    assert "Query refused:" in refused.text and "only SELECT is allowed" in refused.text
    private = pages_server.http.get("/sql", params={"q": "SELECT * FROM record_store"})
    assert "is not public" in private.text and "Secretpending" not in private.text


def test_home_shows_counts_chart_and_audit_figures(pages_server: Server) -> None:
    html = pages_server.http.get("/").text
    assert "<strong>65</strong> approved records" in html
    assert '<svg class="chart"' in html and "<polyline" in html
    assert "share with any group" in html and "0.810" in html and "no target model was given" in html
    assert "vdata push" in html


def test_home_says_plainly_when_bias_is_not_measured(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    threaded, server = start_server(
        new_db_url("sqlite", request, tmp_path_factory),
        audit_report=Path("/nonexistent/report.json"),
        count_cache_s=0,
    )
    try:
        html = server.http.get("/").text
        assert "Not yet measured." in html and "No approved records yet." in html
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_record_page_renders_a_given_moderation_history(pages_server: Server) -> None:
    """The slot the moderation audit log fills: `history` in the record page's context."""
    from vdata.server import browse
    from vdata.server.pages.record import record_context
    from vdata.server.pages.render import environment

    record_id = pages_server.http.get("/records", params={"format": "json"}).json()["records"][0]["id"]
    record = browse.fetch_record(pages_server.engine, record_id)
    assert record is not None
    history = [
        {"at": "2026-11-30T10:00:00Z", "moderator": "ann", "old": "pending", "new": "approved",
         "reason": "<script>alert(1)</script>"},
    ]  # fmt: skip
    template = environment().get_template("record.html")
    base = {"path": f"/records/{record_id}", "donate_url": None, **record_context(record)}
    with_history = template.render({**base, "history": history})
    assert "<h2>Moderation history</h2>" in with_history and "<bdi>ann</bdi>" in with_history
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in with_history and "<script>alert" not in with_history
    assert "Moderation history" not in template.render(base)
