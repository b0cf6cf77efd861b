"""The reader pages in a real Chromium: browse, sort, filter, search, paginate, permalink, SQL console,
hostile text rendered inert, and browsing with JavaScript disabled. Screenshots go to docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect

BOOTSTRAP_TOKEN = "browser-test-token"  # set by the live_server fixture
XSS_TEXTS: tuple[str, ...] = (
    "<script>window.__xss = 1; alert('xss-script')</script> nurses are engineers",
    '"><img src=x onerror="window.__xss = 2; alert(2)"> engineers can be nurses',
    "javascript:alert(document.cookie) said the pilot",
    "the \u202egnirts desrever\u202c pilot is kind",
    "pilot " + "W" * 3_990,
)
CATEGORIES = ("gender", "race", "religion", "age")
PROVIDERS = ("openai", "local")


def _records() -> list[dict[str, Any]]:
    records = [
        {
            "text": f"Record {i:03d}: the {category} example says engineers and nurses can be anyone.",
            "target": "engineers",
            "attribute": "anyone",
            "category": category,
            "strategy": "targeted" if i % 3 else "general",
            "provider": PROVIDERS[i % 2],
            "model": "smollm2-135m",
            "params": {"temperature": 0.8, "seed": i},
        }
        for i in range(120)
        for category in [CATEGORIES[i % len(CATEGORIES)]]
    ]
    records += [
        {
            "text": text,
            "target": '<svg onload="window.__xss = 3">',
            "attribute": "javascript:window.__xss=4",
            "category": "race",
            "strategy": "targeted",
            "provider": "<img src=x onerror=alert(5)>",
            "model": "m",
        }
        for text in XSS_TEXTS
    ]
    return records


@pytest.fixture(scope="module")
def seeded(live_server: str) -> Iterator[str]:
    """The live server with 125 approved records (5 hostile) and 3 pending ones, seeded through the API."""
    with httpx.Client(base_url=live_server, timeout=30) as http:
        records = _records()
        stored = http.put("/v1/records", json=records[:120], params={"contributor": "alice"})
        hostile = http.put("/v1/records", json=records[120:], params={"contributor": "<b>mallory</b>"})
        for response in (stored, hostile):
            assert response.status_code == 200, response.text
            for record_id in response.json()["accepted"]:
                moderated = http.put(
                    f"/v1/records/{record_id}/status",
                    json={"status": "approved"},
                    headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"},
                )
                assert moderated.status_code == 200, moderated.text
        pending = [{**r, "text": f"Pendingsecret {i} nurses"} for i, r in enumerate(records[:3])]
        assert http.put("/v1/records", json=pending, params={"contributor": "zed"}).status_code == 200
    yield live_server


@pytest.fixture
def watched(page: Page) -> Iterator[tuple[Page, list[str]]]:
    """The page, and a list of what went wrong in it: dialogs and console errors (CSP reports land there)."""
    problems: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"error: {error}"))
    yield page, problems


def test_home_page(watched: tuple[Page, list[str]], seeded: str, screenshots_dir: Path) -> None:
    page, problems = watched
    page.goto(seeded)
    expect(page.locator("h1")).to_have_text("The vdata public dataset")
    expect(page.locator(".intro .big strong")).to_have_text("125")
    expect(page.locator("svg.chart rect.month")).to_have_count(1)
    expect(page.get_by_text("Not yet measured.")).to_be_visible()
    page.screenshot(path=str(screenshots_dir / "home.png"), full_page=True)
    assert problems == []


def test_browse_sort_filter_search_paginate(
    watched: tuple[Page, list[str]], seeded: str, screenshots_dir: Path
) -> None:
    page, problems = watched
    page.goto(f"{seeded}/records")
    rows = page.locator("table.records tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".facets .total strong")).to_have_text("125")
    page.screenshot(path=str(screenshots_dir / "records.png"), full_page=False)

    # Sort by category, then descending.
    page.locator("table.records th a", has_text="category").click()
    expect(page.locator("table.records th a[aria-sort='ascending']")).to_have_text("category ▲")
    expect(rows.first.locator("td").nth(4)).to_have_text("age")
    page.locator("table.records th a", has_text="category").click()
    expect(rows.first.locator("td").nth(4)).to_have_text("religion")
    assert "sort=category" in page.url and "dir=desc" in page.url

    # A facet filters; the URL carries the filter.
    page.locator(".facets a", has_text="gender").click()
    expect(page.locator(".facets .total strong")).to_have_text("30")
    assert "category=gender" in page.url

    # Search from the form; pagination follows the filter.
    page.goto(f"{seeded}/records")
    page.locator("input[name=q]").fill("religion example")
    page.locator("input[name=q]").press("Enter")
    expect(page.locator(".facets .total strong")).to_have_text("30")
    expect(rows).to_have_count(30)
    page.goto(f"{seeded}/records?limit=25&provider=openai")
    seen: list[str] = []
    while True:
        seen += page.locator("td.id a").all_inner_texts()
        following = page.locator("a[rel=next]")
        if following.count() == 0:
            break
        before = page.url
        following.click()
        # click() returns before the next page has loaded: read its rows only once the URL has moved.
        page.wait_for_url(lambda url, before=before: url != before)
    assert len(seen) == len(set(seen)) == 60
    page.locator("a[rel=prev]").click()
    expect(rows).to_have_count(25)
    assert problems == []


def test_record_permalink(watched: tuple[Page, list[str]], seeded: str, screenshots_dir: Path) -> None:
    page, problems = watched
    page.goto(f"{seeded}/records?contributor=alice")
    first = page.locator("td.id a").first
    record_id = first.inner_text()
    first.click()
    expect(page).to_have_url(f"{seeded}/records/{record_id}")
    expect(page.locator("h1")).to_contain_text(record_id)
    expect(page.locator("dl.fields")).to_contain_text("smollm2-135m")
    expect(page.locator("pre.json")).to_contain_text('"temperature": 0.8')
    page.screenshot(path=str(screenshots_dir / "record.png"), full_page=True)
    pending = httpx.get(f"{seeded}/records?q=pendingsecret&format=json").json()["records"]
    assert pending == []
    assert problems == []


def test_sql_console_round_trip_and_refusal(
    watched: tuple[Page, list[str]], seeded: str, screenshots_dir: Path
) -> None:
    page, problems = watched
    page.goto(f"{seeded}/sql")
    editor = page.locator("#sql-editor")
    editor.fill("SELECT provider, COUNT(*) AS n FROM records GROUP BY provider ORDER BY provider")
    editor.press("Control+Enter")  # static/sql.js
    expect(page.locator("table.result tbody tr")).to_have_count(3)
    expect(page.locator("table.result")).to_contain_text("openai")
    assert "/sql?q=SELECT" in page.url  # the query is its URL
    csv_link = page.locator("a", has_text="CSV").first.get_attribute("href") or ""
    assert httpx.get(seeded + csv_link).text.startswith("provider,n")
    page.screenshot(path=str(screenshots_dir / "sql.png"), full_page=True)
    page.locator("details.examples summary").click()
    page.locator("details.examples a", has_text="Records per category").click()
    expect(page.locator("table.result")).to_contain_text("gender")
    assert problems == []

    editor = page.locator("#sql-editor")
    editor.fill("DELETE FROM records")
    page.locator("form.sql button").click()
    expect(page.locator(".refused")).to_contain_text("only SELECT is allowed")
    page.screenshot(path=str(screenshots_dir / "sql-refused.png"))
    # A refused query's page answers 400, which Chromium notes in the console; nothing else may appear.
    assert all("status of 400" in p for p in problems), problems


def test_hostile_text_is_inert(watched: tuple[Page, list[str]], seeded: str, screenshots_dir: Path) -> None:
    page, problems = watched
    page.goto(f"{seeded}/records?contributor=%3Cb%3Emallory%3C%2Fb%3E")
    expect(page.locator("table.records tbody tr")).to_have_count(len(XSS_TEXTS))
    expect(page.locator("table.records")).to_contain_text("<script>window.__xss = 1;")
    page.screenshot(path=str(screenshots_dir / "records-hostile.png"), full_page=True)
    ids = page.locator("td.id a").all_inner_texts()
    for path in [
        "/records?contributor=%3Cb%3Emallory%3C%2Fb%3E",
        "/",
        "/sql?q=SELECT+*+FROM+records",
        *[f"/records/{i}" for i in ids],
    ]:
        page.goto(seeded + path)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("main img, main iframe, main b, main svg[onload]").count() == 0, path
        assert page.locator("a[href^='javascript:']").count() == 0, path
        # The 4,000-character word wraps instead of widening the page.
        width = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert width <= 1, (path, width)
    assert problems == []


def test_browse_without_javascript(browser: Browser, seeded: str, screenshots_dir: Path) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{seeded}/records")
        page.locator("input[name=contributor]").fill("alice")
        page.locator("select[name=sort]").select_option("created_at")
        page.locator("select[name=dir]").select_option("desc")
        page.locator("form.filters button").click()
        expect(page.locator(".facets .total strong")).to_have_text("120")
        assert "contributor=alice" in page.url and "sort=created_at" in page.url
        first_page = page.locator("td.id a").all_inner_texts()
        before = page.url
        page.locator("a[rel=next]").click()
        page.wait_for_url(lambda url: url != before)  # as above: the next page's rows, not these again
        second_page = page.locator("td.id a").all_inner_texts()
        assert second_page and set(first_page).isdisjoint(second_page)
        page.locator("td.id a").first.click()
        expect(page.locator("dl.fields")).to_contain_text("alice")
        page.goto(f"{seeded}/sql")
        page.locator("#sql-editor").fill("SELECT COUNT(*) AS n FROM records")
        page.locator("form.sql button").click()
        expect(page.locator("table.result td")).to_have_text("125")
        page.goto(f"{seeded}/records?contributor=alice")
        page.screenshot(path=str(screenshots_dir / "records-no-js.png"))
    finally:
        context.close()
