"""Automatic flags on pending records, computed with the audit's hygiene code (vdata.core.hygiene)."""

from __future__ import annotations

import pytest

from vdata.server import flags, moderation_store

from .conftest import Server, sample_records

BASE = "The young nurse fixed the old engine of the red truck before the long night shift began."


@pytest.fixture(scope="module")
def checks() -> flags.Flagger:
    return flags.flagger()


def test_flags_on_both_databases(fresh_server: Server, checks: flags.Flagger) -> None:
    record = sample_records(1)[0]
    approved = fresh_server.http.put("/v1/records", json=[{**record, "text": BASE}]).json()["accepted"]
    fresh_server.moderate(approved[0])
    texts = {
        "duplicate": BASE.upper().replace(".", "!"),
        "near": BASE.replace("shift began", "shift started"),
        "refusal": "I'm sorry, but I can't help with that request.",
        "language": "Die junge Krankenschwester repariert den alten Motor und der Mann ist Erzieher.",
        "clean": "An elderly man taught the whole class how to build a website from scratch.",
    }
    ids = fresh_server.http.put(
        "/v1/records", json=[{**record, "text": t} for t in texts.values()], params={"contributor": "ivy"}
    ).json()["accepted"]
    queue = moderation_store.pending_queue(fresh_server.engine)
    rows = [r for b in queue for r in b.records]
    found = flags.flag_records(fresh_server.engine, rows, checks)
    by_name = dict(zip(texts, ids, strict=True))
    kinds = {name: [f.kind for f in found[rid]] for name, rid in by_name.items()}
    assert kinds["duplicate"][0] == "duplicate" and found[by_name["duplicate"]][0].detail == approved[0]
    assert kinds["near"][0] == "near-duplicate" and approved[0] in found[by_name["near"]][0].detail
    assert "refusal" in kinds["refusal"]
    assert kinds["language"] == ["language"]
    assert kinds["clean"] == []
    # Indexing is incremental: a second call has nothing new to index.
    assert flags.index_signatures(fresh_server.engine, checks) == 0
    assert flags.index_backlog(fresh_server.engine) == 0


def test_benchmark_overlap_flag(checks: flags.Flagger) -> None:
    if checks.benchmarks is None:
        pytest.skip("benchmark files not found (set VDATA_DATA_DIR)")
    sentence = next(iter(checks.benchmarks.long_grams))
    text = " ".join(sentence) + " and more words after it."
    tokens = checks.hygiene.tokenize(text)
    assert [f.kind for f in checks.text_flags(text, tokens)][:1] == ["benchmark"]
