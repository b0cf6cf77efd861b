"""Moderation and transparency pages in real Chromium: sign-in, bulk approve (then visible to readers),
CSRF and session checks, keyboard-only moderation, hostile text rendered inert, /about's figures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TOKEN = "browser-admin-token"
HOSTILE = [
    "<script>alert('xss')</script> The nurse is a man and an engineer.",
    '"><img src=x onerror=alert(1)> Old people can learn to code quickly.',
    "javascript:alert(1) \u202eevil text reversed\u202c the doctor is a woman.",
    "A" * 3_900 + " long words must not break the page layout.",
]


def _vdata(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "vdata.cli", *args], env=env, check=True, capture_output=True, timeout=120
    )


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vdata serve` on a database the test prepared with `vdata costs add`; yields its base URL."""
    home = tmp_path_factory.mktemp("admin-server")
    db = f"sqlite:///{home / 'vdata.db'}"
    env = os.environ | {
        "VDATA_HOME": str(home),
        "VDATA_MODERATOR_TOKEN": TOKEN,
        "VDATA_DONATE_URL": "https://example.org/donate",
    }
    for month, hosting, donations in (
        ("2026-06", "14.00", "5"),
        ("2026-07", "14.00", "22.50"),
        ("2026-08", "18.40", "12"),
        ("2026-09", "18.40", "40"),
        ("2026-10", "21.00", "18"),
        ("2026-11", "21.00", "35"),
    ):
        _vdata(
            "costs",
            "add",
            month,
            "--hosting",
            hosting,
            "--domain",
            "1.10",
            "--donations",
            donations,
            "--db",
            db,
            env=env,
        )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vdata.cli", "serve", "--db", db, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vdata serve did not start:\n{proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _records(prefix: str, n: int, category: str = "gender") -> list[dict[str, Any]]:
    return [
        {
            "text": f"{prefix} sentence {i}: the {category} of a person says nothing about their skill.",
            "target": "person",
            "attribute": "skill",
            "category": category,
            "strategy": "targeted",
            "provider": "test",
            "model": "none",
        }
        for i in range(n)
    ]


def _push(base: str, records: list[dict[str, Any]], contributor: str) -> list[str]:
    response = httpx.put(f"{base}/v1/records", json=records, params={"contributor": contributor}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["accepted"]


def _status(base: str, record_id: str) -> str | None:
    rows = httpx.get(
        f"{base}/v1/moderation/queue", params={"limit": 1000}, headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()["records"]
    if any(r["id"] == record_id for r in rows):
        return "pending"
    public = httpx.get(f"{base}/v1/records", params={"limit": 1000}).json()["records"]
    return "approved" if any(r["id"] == record_id for r in public) else "rejected"


def _no_dialogs(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("Moderator token").fill(TOKEN)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/moderate")


def test_sign_in_bulk_approve_and_readers_see_the_batch(
    page: Page, admin_server: str, screenshots_dir: Path
) -> None:
    dialogs = _no_dialogs(page)
    hostile = [{**_records("Hostile", 1)[0], "text": t} for t in HOSTILE]
    hostile.append({**_records("x", 1)[0], "text": "As an AI language model, I cannot write stereotypes."})
    hostile.append(
        {**_records("x", 1)[0], "text": "La enfermera es ingeniera y el hombre cuida a los niños."}
    )
    _push(admin_server, hostile, "mallory")
    ids = _push(admin_server, _records("Batch", 4), "alice")
    page.set_viewport_size({"width": 1000, "height": 560})
    page.goto(f"{admin_server}/signin")
    page.screenshot(path=str(screenshots_dir / "signin.png"))
    _sign_in(page, admin_server)
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(page.locator("section.adm-batch")).to_have_count(2)
    expect(page.locator(".adm-flag-refusal")).to_have_count(1)
    expect(page.locator(".adm-flag-language")).to_have_count(1)
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    page.screenshot(
        path=str(screenshots_dir / "moderate.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": 1500},
    )

    batch = page.locator("section.adm-batch", has_text="alice")
    page.locator("#reason").fill("checked by hand")
    batch.get_by_role("button", name="Approve whole batch").click()
    expect(page.locator(".adm-notice")).to_have_text("Approved 4 records.")
    public = httpx.get(f"{admin_server}/v1/records", params={"limit": 1000}).json()["records"]
    assert set(ids) <= {r["id"] for r in public}
    assert dialogs == []


def test_keyboard_only_moderation(page: Page, admin_server: str) -> None:
    dialogs = _no_dialogs(page)
    ids = _push(admin_server, _records("Keys", 3, "race"), "kim")
    _sign_in(page, admin_server)
    page.goto(f"{admin_server}/moderate?contributor=kim")
    expect(page.locator("tr.adm-rec")).to_have_count(3)
    page.keyboard.press("x")  # select the first
    page.keyboard.press("j")
    page.keyboard.press("x")  # and the second
    page.keyboard.press("a")  # approve the selection
    expect(page.locator(".adm-notice")).to_have_text("Approved 2 records.")
    page.keyboard.press("r")  # reject the current (only remaining) record: asks for a reason first
    expect(page.locator("#reason")).to_be_focused()
    page.keyboard.type("duplicate of another contribution")
    page.keyboard.press("Enter")
    expect(page.locator(".adm-notice")).to_have_text("Rejected 1 record.")
    assert [_status(admin_server, i) for i in ids] == ["approved", "approved", "rejected"]
    assert dialogs == []


def test_csrf_and_session_checks(page: Page, admin_server: str, browser: Browser) -> None:
    ids = _push(admin_server, _records("Csrf", 1, "religion"), "olga")
    _sign_in(page, admin_server)
    cookie = next(c for c in page.context.cookies() if c["name"] == "vdata_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("vdata_session") == -1
    page.goto(f"{admin_server}/moderate?contributor=olga")
    # A forged form (wrong CSRF token) is refused and changes nothing.
    page.evaluate("document.querySelector('#queue input[name=csrf]').value = 'forged'")
    page.locator(f"tr[data-id='{ids[0]}']").get_by_role("button", name="Approve").click()
    expect(page.locator("body")).to_contain_text("CSRF token is missing or wrong")
    assert _status(admin_server, ids[0]) == "pending"
    # Another browser without the session is sent to sign in.
    other = browser.new_context()
    stranger = other.new_page()
    stranger.goto(f"{admin_server}/moderate")
    expect(stranger).to_have_url(f"{admin_server}/signin")
    other.close()
    # Sign out ends the session.
    page.goto(f"{admin_server}/moderate")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{admin_server}/moderate")
    expect(page).to_have_url(f"{admin_server}/signin")


def test_about_page(page: Page, admin_server: str, screenshots_dir: Path) -> None:
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{admin_server}/about")
    expect(page.locator("svg.adm-chart rect")).to_have_count(12)
    expect(page.locator("table.adm-table").last).to_contain_text("2026-11")
    expect(page.get_by_role("main").get_by_role("link", name="Donate")).to_have_attribute(
        "href", "https://example.org/donate"
    )
    page.screenshot(path=str(screenshots_dir / "about.png"), full_page=True)
