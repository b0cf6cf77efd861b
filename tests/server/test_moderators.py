"""Moderator accounts, the JSON API's tokens, batches, and the append-only moderation log, on both
databases; the operator's commands through the real CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from vdata.cli import app as vdata_app
from vdata.core.errors import UserError
from vdata.server import moderators
from vdata.server.costs import add_entries
from vdata.server.db import make_engine, upgrade
from vdata.server.moderation_store import moderation_history, moderation_log

from .conftest import MODERATOR_TOKEN, Server, sample_records

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The UserError message of a command that must fail (main() turns it into exit code 2)."""
    result = runner.invoke(vdata_app, args)
    assert isinstance(result.exception, UserError) and result.exception.exit_code == 2, result.output
    return str(result.exception)


def test_tokens_are_stored_as_scrypt_hashes_with_their_own_salt() -> None:
    a, b = moderators.hash_secret("secret"), moderators.hash_secret("secret")
    assert a != b and a.startswith("scrypt$16384$8$1$") and "secret" not in a
    assert moderators.verify_secret("secret", a) and moderators.verify_secret("secret", b)
    assert not moderators.verify_secret("Secret", a)
    assert not moderators.verify_secret("secret", "md5$nope")


def test_cli_add_list_revoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    added = runner.invoke(vdata_app, ["moderators", "add", "alice", "--db", db])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("vdm_")
    engine = create_engine(db)
    with engine.connect() as conn:
        stored = conn.execute(select(moderators.moderator.c.token_hash)).scalar_one()
    assert token not in stored and token.split("_")[-1] not in stored
    assert moderators.authenticate(engine, token, None) == "alice"
    assert moderators.authenticate(engine, token + "x", None) is None
    assert moderators.authenticate(engine, token[:-1] + ("A" if token[-1] != "A" else "B"), None) is None

    assert "already exists" in _refused(["moderators", "add", "alice", "--db", db])
    assert "reserved" in _refused(["moderators", "add", "admin", "--db", db])
    assert "not allowed" in _refused(["moderators", "add", "<script>", "--db", db])

    listed = runner.invoke(vdata_app, ["moderators", "list", "--db", db])
    assert "alice" in listed.output and "active" in listed.output
    assert runner.invoke(vdata_app, ["moderators", "revoke", "alice", "--db", db]).exit_code == 0
    assert moderators.authenticate(engine, token, None) is None
    assert "revoked" in runner.invoke(vdata_app, ["moderators", "list", "--db", db]).output
    assert "already revoked" in _refused(["moderators", "revoke", "alice", "--db", db])
    assert "no moderator named 'bob'" in _refused(["moderators", "revoke", "bob", "--db", db])
    # The bootstrap token keeps working beside named moderators.
    assert moderators.authenticate(engine, "boot", "boot") == moderators.BOOTSTRAP_NAME


def test_api_accepts_named_tokens_logs_who_and_refuses_revoked(fresh_server: Server) -> None:
    token = moderators.add_moderator(fresh_server.engine, "carol")
    ids = fresh_server.http.put("/v1/records", json=sample_records(2)).json()["accepted"]
    auth = {"Authorization": f"Bearer {token}"}
    put = fresh_server.http.put(
        f"/v1/records/{ids[0]}/status", json={"status": "rejected", "reason": "off topic"}, headers=auth
    )
    assert put.status_code == 200, put.text
    history = moderation_history(fresh_server.engine, ids[0])
    assert [(h["moderator"], h["old_status"], h["new_status"], h["reason"]) for h in history] == [
        ("carol", "pending", "rejected", "off topic")
    ]
    moderators.revoke_moderator(fresh_server.engine, "carol")
    refused = fresh_server.http.put(f"/v1/records/{ids[1]}/status", json={"status": "approved"}, headers=auth)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert fresh_server.count("approved") == 0


def test_batches_group_the_queue_and_approve_together(fresh_server: Server) -> None:
    first = fresh_server.http.put(
        "/v1/records", json=sample_records(3, "First"), params={"contributor": "dora"}
    ).json()["accepted"]
    second = fresh_server.http.put(
        "/v1/records", json=sample_records(2, "Second"), params={"contributor": "eve"}
    ).json()["accepted"]
    auth = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}
    batches = fresh_server.http.get("/v1/moderation/batches", headers=auth).json()["batches"]
    assert [(b["contributor"], [r["id"] for r in b["records"]]) for b in batches] == [
        ("dora", first),
        ("eve", second),
    ]
    only_eve = fresh_server.http.get(
        "/v1/moderation/batches", params={"contributor": "eve"}, headers=auth
    ).json()["batches"]
    assert [b["contributor"] for b in only_eve] == ["eve"]

    # One record of the first batch decided alone; the batch action then leaves it as decided.
    fresh_server.moderate(first[0], "rejected")
    done = fresh_server.http.put(
        f"/v1/moderation/batches/{batches[0]['batch']}/status",
        json={"status": "approved", "reason": "looks good"},
        headers=auth,
    ).json()
    assert done["changed"] == first[1:]
    visible = {r["id"] for r in fresh_server.http.get("/v1/records").json()["records"]}
    assert visible == set(first[1:])
    history = moderation_history(fresh_server.engine, first[1])
    assert history[0]["batch_id"] == batches[0]["batch"] and history[0]["reason"] == "looks good"

    selection = fresh_server.http.put(
        "/v1/moderation/status",
        json={"status": "approved", "ids": [*second, "0123456789abcdef"]},
        headers=auth,
    ).json()
    assert selection == {"changed": second, "unchanged": [], "missing": ["0123456789abcdef"]}
    assert fresh_server.count("pending") == 0
    too_long = fresh_server.http.put(
        f"/v1/records/{first[0]}/status", json={"status": "approved", "reason": "x" * 501}, headers=auth
    )
    assert too_long.status_code == 422


def test_moderation_log_is_append_only_in_the_database(fresh_server: Server) -> None:
    record = fresh_server.http.put("/v1/records", json=sample_records(1)).json()["accepted"][0]
    fresh_server.moderate(record, "approved")
    engine = fresh_server.engine
    add_entries(engine, "2026-11", {"hosting": 1250})
    for statement in (
        "UPDATE moderation_log SET reason = 'rewritten'",
        "DELETE FROM moderation_log",
        "UPDATE operating_cost SET amount_cents = 0",
        "DELETE FROM operating_cost",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE moderation_log"))
    with engine.connect() as conn:
        rows = conn.execute(select(moderation_log.c.reason, moderation_log.c.new_status)).all()
    assert rows == [("", "approved")]


def test_migration_upgrades_an_existing_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'u.sqlite3'}")
    upgrade(engine)
    upgrade(engine)  # a no-op when current
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
    assert {"moderation_log_no_update", "moderation_log_no_delete"} <= names
    engine.dispose()
