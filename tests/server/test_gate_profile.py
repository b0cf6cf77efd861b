"""The gate's profile of the public (approved) data, kept up to date from what changed (records stored
since, the moderation log) instead of recounted: the same as a recount, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, func, select

from vdata.core.lexicon import build_lexicon
from vdata.core.records import Record
from vdata.server import gate, store
from vdata.server.db import record_store
from vdata.server.moderation_store import Decision, decide, moderation_log

from .conftest import new_db_url
from .snapshot_helpers import make_db

LEXICON = build_lexicon(None)
TEXTS = [
    ("The woman in {} is strong.", "strong"),
    ("The man in {} is gentle.", "gentle"),
    ("A Muslim neighbour in {} is generous.", "generous"),
    ("The nurse in {} was a man, and brave.", ""),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    made = make_db(new_db_url(request.param, request, tmp_path_factory))
    request.addfinalizer(made.dispose)
    return made


def put(engine: Engine, tag: str, n: int) -> list[str]:
    records = [
        Record(text=TEXTS[i % len(TEXTS)][0].format(f"{tag} {i}"), attribute=TEXTS[i % len(TEXTS)][1])
        for i in range(n)
    ]
    return store.put_records(engine, records, "tester").accepted


def moderate(engine: Engine, ids: list[str], status: str) -> None:
    decide(engine, Decision(moderator="mod", new_status=status, reason="test", record_ids=tuple(ids)))


def as_plain(
    profile: gate.GroupProfile,
) -> tuple[int, dict[str, dict[str, int]], dict[str, dict[str, dict[str, int]]]]:
    return (
        profile.records,
        {cat: dict(c) for cat, c in profile.group_records.items() if c},
        {cat: {w: dict(c) for w, c in words.items() if c} for cat, words in profile.pairings.items()},
    )


def test_the_update_equals_a_recount_after_puts_approvals_and_reversals(engine: Engine) -> None:
    first = put(engine, "first", 12)
    moderate(engine, first[:8], "approved")
    moderate(engine, first[8:10], "rejected")
    before = gate.public_profile(engine, LEXICON)
    assert before.profile.records == 8

    moderate(engine, first[:2], "rejected")  # approved -> rejected: taken back
    moderate(engine, first[10:], "approved")  # pending -> approved: counted
    moderate(engine, first[8:9], "approved")  # rejected -> approved
    moderate(engine, first[3:4], "pending")  # approved -> pending: taken back
    moderate(engine, first[3:4], "approved")  # and back
    second = put(engine, "second", 6)
    moderate(engine, second[:4], "approved")  # new records, approved: counted by their status
    moderate(engine, second[:1], "rejected")

    updated = gate.update_public_profile(engine, LEXICON, before)
    assert updated is not None and before.profile.records == 8  # a new profile; the old one as it was
    recount = gate.public_profile(engine, LEXICON)
    assert as_plain(updated.profile) == as_plain(recount.profile)
    assert updated.profile.records == 8 - 2 + 2 + 1 + 3 == store.stats(engine)["by_status"]["approved"]
    assert (updated.record_seq, updated.log_seq) == (recount.record_seq, recount.log_seq)
    with engine.connect() as conn:
        assert updated.log_seq == conn.execute(select(func.max(moderation_log.c.seq))).scalar()

    # Nothing changed since: the same profile, and reading it again changes nothing.
    again = gate.update_public_profile(engine, LEXICON, updated)
    assert again is not None and as_plain(again.profile) == as_plain(recount.profile)


def test_rows_gone_without_a_log_entry_make_the_update_give_up_for_a_recount(engine: Engine) -> None:
    ids = put(engine, "gone", 6)
    moderate(engine, ids, "approved")
    before = gate.public_profile(engine, LEXICON)
    with engine.begin() as conn:  # as archiving a month does: rows leave, no moderation entry
        conn.execute(delete(record_store).where(record_store.c.id == ids[0]))
    assert gate.update_public_profile(engine, LEXICON, before) is None
    assert gate.public_profile(engine, LEXICON).profile.records == 5


def test_the_gate_checks_count_once_then_update(engine: Engine) -> None:
    ids = put(engine, "checks", 4)
    moderate(engine, ids, "approved")
    checks = gate.GateChecks(refresh_s=0)
    assert checks.public(engine).records == 4
    moderate(engine, ids[:1], "rejected")
    moderate(engine, put(engine, "more", 3), "approved")
    assert as_plain(checks.public(engine)) == as_plain(gate.public_profile(engine, LEXICON).profile)
    assert checks.public(engine).records == 6
