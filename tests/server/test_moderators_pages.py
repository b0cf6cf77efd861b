"""The moderation pages over real HTTP: sign-in, session cookie flags, CSRF refusals, sign-out, session
expiry, the sign-in rate limit, decisions from the queue form, flags, and /about's figures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from vdata.server import auth, moderators
from vdata.server.costs import add_entries
from vdata.server.moderation_store import moderation_history

from .conftest import MODERATOR_TOKEN, Server, sample_records, start_server

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    threaded, server = start_server(f"sqlite:///{tmp_path / 'pages.sqlite3'}")
    try:
        yield server
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def _browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


def _sign_in(client: httpx.Client, token: str = MODERATOR_TOKEN, **headers: str) -> httpx.Response:
    form = client.get("/signin")
    csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    return client.post("/signin", data={"csrf": csrf, "token": token}, headers=headers)


def test_sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it(server: Server) -> None:
    with _browser(server) as client:
        assert client.get("/moderate").headers["location"] == "/signin"
        signed = _sign_in(client)
        assert signed.status_code == 303 and signed.headers["location"] == "/moderate"
        cookie = next(h for h in signed.headers.get_list("set-cookie") if h.startswith(auth.SESSION_COOKIE))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        page = client.get("/moderate")
        assert page.status_code == 200 and "Signed in as" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert MODERATOR_TOKEN not in page.text
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        assert client.post("/signout", data={"csrf": "wrong"}).status_code == 403
        assert client.get("/moderate").status_code == 200  # still signed in
        assert client.post("/signout", data={"csrf": csrf}).status_code == 303
        old = client.cookies.get(auth.SESSION_COOKIE)
    assert old is None or auth.session_for(server.engine, old, MODERATOR_TOKEN) is None
    with _browser(server) as client:
        # Behind a TLS-terminating proxy the cookie is Secure.
        signed = _sign_in(client, **{"X-Forwarded-Proto": "https"})
        cookie = next(h for h in signed.headers.get_list("set-cookie") if h.startswith(auth.SESSION_COOKIE))
        assert "Secure" in cookie


def test_sign_in_refusals_and_rate_limit(server: Server) -> None:
    with _browser(server) as client:
        client.get("/signin")
        no_csrf = client.post("/signin", data={"token": MODERATOR_TOKEN})
        assert no_csrf.status_code == 403 and auth.SESSION_COOKIE not in no_csrf.cookies
        wrong = _sign_in(client, "not-the-token")
        assert wrong.status_code == 401 and "Wrong or revoked token" in wrong.text
        statuses = [_sign_in(client, "guess").status_code for _ in range(auth.SIGNIN_BURST)]
        assert statuses[-1] == 429 and "Retry-After" in _sign_in(client, "guess").headers
        # Even the right token waits once the address is over the limit.
        assert _sign_in(client).status_code == 429


def test_only_failed_sign_ins_count_toward_the_limit(server: Server) -> None:
    with _browser(server) as client:
        client.get("/signin")
        for _ in range(2 * auth.SIGNIN_BURST):  # a moderator signing in again and again is never refused
            client.cookies.clear()  # a fresh browser each time: signed-in visitors are sent past /signin
            assert _sign_in(client).status_code == 303


def test_sessions_expire_and_end_with_a_revoked_token(server: Server) -> None:
    cookie, _ = auth.create_session(server.engine, moderators.BOOTSTRAP_NAME, ttl=timedelta(seconds=-1))
    assert auth.session_for(server.engine, cookie, MODERATOR_TOKEN) is None
    with _browser(server) as client:
        client.cookies.set(auth.SESSION_COOKIE, cookie)
        assert client.get("/moderate").status_code == 303
    token = moderators.add_moderator(server.engine, "frank")
    with _browser(server) as client:
        assert _sign_in(client, token).status_code == 303
        assert client.get("/moderate").status_code == 200
        moderators.revoke_moderator(server.engine, "frank")
        assert client.get("/moderate").status_code == 303


def test_queue_form_decides_with_csrf_and_shows_flags(server: Server) -> None:
    records = sample_records(3, "Queue")
    records.append({**records[0], "text": "As an AI language model, I cannot write that sentence."})
    records.append({**records[0], "text": "La mujer es una ingeniera brillante y el hombre es enfermero."})
    records.append(
        {**records[0], "text": '<script>alert(1)</script> \u202eevil\u202c "><img src=x onerror=alert(2)>'}
    )
    ids = server.http.put("/v1/records", json=records, params={"contributor": "gina"}).json()["accepted"]
    server.moderate(ids[0])
    # Same words as the approved record, other punctuation and case: a duplicate of public data.
    dup = {**records[0], "text": records[0]["text"].upper().replace(":", " -")}
    dup_id = server.http.put("/v1/records", json=[dup], params={"contributor": "hal"}).json()["accepted"][0]

    with _browser(server) as client:
        _sign_in(client)
        page = client.get("/moderate")
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "onerror=alert(2)>" not in page.text
        rows = dict(
            re.findall(
                r'data-id="([0-9a-f]{16})".*?<td>(.*?)</td>\s*<td class="adm-decide">', page.text, re.S
            )
        )
        assert "refusal" in rows[ids[3]] and "language" in rows[ids[4]] and "duplicate" in rows[dup_id]
        assert "none" in rows[ids[1]]
        flagged = client.get("/moderate", params={"flag": "refusal"}).text
        assert ids[3] in flagged and ids[1] not in flagged
        assert dup_id not in client.get("/moderate", params={"contributor": "gina"}).text

        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        forged = client.post("/moderate", data={"csrf": "forged", "one": f"approve:{ids[1]}"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        with _browser(server) as stranger:  # no session at all
            assert (
                stranger.post("/moderate", data={"csrf": csrf, "one": f"approve:{ids[1]}"}).status_code == 401
            )
        assert server.count("approved") == 1

        done = client.post(
            "/moderate",
            data={"csrf": csrf, "action": "reject", "id": [ids[3], ids[4]], "reason": "not usable"},
        )
        assert done.status_code == 303 and "done=rejected" in done.headers["location"]
        assert "Rejected 2 records." in client.get(done.headers["location"]).text
        assert moderation_history(server.engine, ids[3])[0]["reason"] == "not usable"
        none = client.post("/moderate", data={"csrf": csrf, "action": "approve"})
        assert "error=none-selected" in none.headers["location"]
        assert "Select at least one record first" in client.get(none.headers["location"]).text
        assert "spoofed" not in client.get("/moderate", params={"error": "spoofed words"}).text
    assert server.count("rejected") == 2


def test_about_shows_statistics_costs_chart_and_donation_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    threaded, server = start_server(
        f"sqlite:///{tmp_path / 'about.sqlite3'}", donate_url="https://example.org/give"
    )
    try:
        ids = server.http.put("/v1/records", json=sample_records(3)).json()["accepted"]
        server.moderate(ids[0])
        server.moderate(ids[1], "rejected")
        add_entries(server.engine, "2026-10", {"hosting": 1250, "donations": 3000})
        add_entries(server.engine, "2026-11", {"hosting": 1250, "domain": 120})
        page = server.http.get("/about")
        assert page.status_code == 200
        assert "1 records approved, 1 rejected" in page.text and "1 waiting" in page.text
        assert "<svg" in page.text and page.text.count('class="adm-bar-costs"') == 2
        assert "30.00" in page.text and "-13.70" in page.text
        assert 'href="https://example.org/give"' in page.text
    finally:
        server.close()
        threaded.__exit__(None, None, None)
