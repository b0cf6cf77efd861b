"""The gate inside `vdata gen` (engine, summary, --rejected, the LLM judge, resume) and `vdata verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generate.stub_server import JUDGE_NO
from vdata.core.io import read_records
from vdata.generate.engine import generate, journal_path, options_fingerprint
from vdata.generate.options import parse_options

FORM = ["not_refusal", "language", "one_sentence", "term_present", "attribute", "pronouns", "no_repeats"]


def gated(server, **kw: object):  # type: ignore[no-untyped-def]
    base = {
        "provider": "openai",
        "model": "stub",
        "base_url": server.base_url,
        "strategy": "simple",
        "count": 12,
        "per_request": 4,
        "concurrency": 4,
        "verify": True,
    }
    return parse_options({**base, **kw})


def vdata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vdata.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env or {**os.environ, "VDATA_CONTRIBUTE": "never"},
    )


def test_verify_is_on_by_default_only_for_the_local_provider() -> None:
    assert parse_options({}).gate_on
    assert not parse_options({"provider": "openai"}).gate_on
    assert parse_options({"provider": "openai", "verify": True}).gate_on
    assert not parse_options({"verify": False}).gate_on


def test_gate_settings_change_the_fingerprint_only_when_the_gate_is_on() -> None:
    off = parse_options({"provider": "openai"})
    assert options_fingerprint(off) == options_fingerprint(
        parse_options({"provider": "openai", "verify_options": {"margin": 1.0}})
    )
    on = parse_options({"provider": "openai", "verify": True})
    assert options_fingerprint(on) != options_fingerprint(off)
    assert options_fingerprint(on) != options_fingerprint(
        parse_options({"provider": "openai", "verify": True, "verify_options": {"margin": 1.0}})
    )


def test_bad_verify_options_are_user_errors(tmp_path: Path) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"verify_options": {"rule": "vibes"}}))
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts))
    assert r.returncode == 2 and "verify_options.rule" in r.stderr and "whole_sentence" in r.stderr
    opts.write_text(
        json.dumps({"provider": "openai", "verify": True, "verify_options": {"checks": ["nope"]}})
    )
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts), "-k", "k")
    assert r.returncode == 2 and "verify check 'nope'" in r.stderr and "no_repeats" in r.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_llm_judge_answers_are_checks_and_drop_reasons(stub, gen_cache: Path, tmp_path: Path) -> None:
    server = stub()
    options = gated(server, verify_options={"checks": ["term_present"], "llm_judge": True})
    summary = generate(options, tmp_path / "out.jsonl", api_key="k")
    records = read_records(tmp_path / "out.jsonl")
    assert len(records) == 12 == summary.records
    for r in records:
        assert [c["name"] for c in r.checks or []] == ["term_present", "llm_judge"]
        assert r.checks[-1]["value"].startswith("Yes") and r.attribute not in JUDGE_NO
    assert summary.drops["gate/llm_judge"] == len(summary.rejected) > 0
    assert all(
        x.record.attribute in JUDGE_NO and x.reason == "the LLM judge said no" for x in summary.rejected
    )
    assert summary.gated >= 12 + len(summary.rejected)  # passed candidates beyond `count` are not written
    # Judge replies are cached like generation replies: a rerun writes the same records, paying at most for
    # generation requests it happens to have in flight beyond the first run's when `count` is reached.
    before = server.requests
    again = generate(options, tmp_path / "again.jsonl", api_key="k")
    assert [r.id for r in again.written] == [r.id for r in records]
    assert again.gated == summary.gated and server.requests - before <= options.concurrency


@pytest.mark.slow
def test_gen_cli_gates_with_the_model_judge_and_writes_rejected(stub, tmp_path: Path, data_dir) -> None:  # type: ignore[no-untyped-def]
    server = stub()
    opts = tmp_path / "o.json"
    opts.write_text(
        json.dumps(
            {
                "provider": "openai",
                "model": "stub",
                "base_url": server.base_url,
                "strategy": "simple",
                "count": 8,
                "per_request": 4,
                "verify": True,
            }
        )
    )
    out, rejected = tmp_path / "out.jsonl", tmp_path / "rejected.jsonl"
    env = {**os.environ, "VDATA_CACHE_DIR": str(tmp_path / "cache"), "VDATA_CONTRIBUTE": "never"}
    summary_file = tmp_path / "summary.json"
    r = vdata(
        "gen",
        str(out),
        str(opts),
        "-k",
        "k",
        "--rejected",
        str(rejected),
        "--summary",
        str(summary_file),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    records = read_records(out)
    assert len(records) == 8
    for rec in records:
        assert [c["name"] for c in rec.checks or []] == [*FORM, "counter_stereotype"]
        assert all(c["pass"] for c in rec.checks or [])
        assert rec.checks[-1]["value"]["delta"] > 0
    rows = [json.loads(line) for line in rejected.read_text(encoding="utf-8").splitlines()]
    assert rows and all(row["rejected"]["check"] == "counter_stereotype" for row in rows)
    assert all(
        row["checks"][-1]["pass"] is False and row["checks"][-1]["value"]["delta"] <= 0 for row in rows
    )
    assert f"gate/counter_stereotype {len(rows)}" in r.stdout
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["records"] == 8 and summary["complete"] is True
    assert summary["drops"]["gate/counter_stereotype"] == len(rows)
    assert summary["gate"]["checked"] == summary["gate"]["passed"] + len(rows)
    assert f"{len(rows)} dropped candidates written to" in r.stdout and "ms per candidate" in r.stdout


@pytest.mark.slow
def test_gated_run_resumes(stub, gen_cache: Path, tmp_path: Path, data_dir) -> None:  # type: ignore[no-untyped-def]
    """A gated run stopped early (max_requests) and rerun ends with the same file as an uninterrupted
    run, every record with its checks, none twice."""
    server = stub()
    out = tmp_path / "out.jsonl"
    first = generate(gated(server, count=16, max_requests=3), out, api_key="k")
    assert not first.complete and journal_path(out).exists()
    kept_first = first.records
    assert 0 < kept_first < 16
    second = generate(gated(server, count=16), out, api_key="k")
    assert second.complete and second.resumed == kept_first and not journal_path(out).exists()
    records = read_records(out)
    assert len({r.id for r in records}) == 16 and all(r.checks for r in records)
    clean = generate(gated(server, count=16), tmp_path / "clean.jsonl", api_key="k")
    assert [r.id for r in clean.written] == [r.id for r in records]


@pytest.mark.slow
def test_vdata_verify_gates_han_rows(tmp_path: Path, data_dir) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ["He is a father who is incredibly nurturing.", "father", "nurturing"],
        ["She is a mother who is incredibly nurturing.", "mother", "nurturing"],
        ["The male is a talented and talented individual.", "male", "talented"],
        {"prompt": "the {} was remarkably ", "subject": "woman", "target_new": {"str": "stoic"}},
    ]
    src = tmp_path / "han.json"
    src.write_text(json.dumps(rows))
    out, rejected = tmp_path / "kept.jsonl", tmp_path / "rej.jsonl"
    r = vdata("verify", str(src), str(out), "--rejected", str(rejected))
    assert r.returncode == 0, r.stderr
    kept = read_records(out)
    dropped = [json.loads(line) for line in rejected.read_text(encoding="utf-8").splitlines()]
    assert len(kept) + len(dropped) == 4
    assert "He is a father who is incredibly nurturing." in {k.text for k in kept}
    reasons = {d["text"]: d["rejected"]["check"] for d in dropped}
    assert reasons["The male is a talented and talented individual."] == "no_repeats"
    assert reasons["She is a mother who is incredibly nurturing."] == "counter_stereotype"
    assert f"kept {len(kept)} of 4" in r.stdout

    r = vdata("verify", str(src), str(out), "--rule", "vibes")
    assert r.returncode == 2 and "--rule" in r.stderr and "whole_sentence" in r.stderr


def test_an_unloadable_judge_model_fails_before_any_request(stub, tmp_path: Path) -> None:
    server = stub()
    opts = tmp_path / "o.json"
    opts.write_text(
        json.dumps(
            {
                "provider": "openai",
                "model": "stub",
                "base_url": server.base_url,
                "verify": True,
                "judge_model": str(tmp_path / "no-such-model"),
            }
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VDATA_CONTRIBUTE": "never"}
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts), "-k", "k", env=env)
    assert r.returncode == 2 and "cannot load model" in r.stderr and "no-such-model" in r.stderr
    assert server.requests == 0 and not (tmp_path / "x.jsonl").exists()


def test_unusable_word_lists_fail_before_any_request(stub, tmp_path: Path) -> None:
    """The gate's CDA word lists are read before generating, not after the first answers arrive (a
    corrupt copy, so no download is tried whatever the network)."""
    server = stub()
    opts = tmp_path / "o.json"
    opts.write_text(
        json.dumps({"provider": "openai", "model": "stub", "base_url": server.base_url, "verify": True})
    )
    data = tmp_path / "benchmarks"
    (data / "bias_attribute_words").mkdir(parents=True)
    (data / "bias_attribute_words" / "bias_attribute_words.json").write_text('{"gender": []}')
    env = {**os.environ, "VDATA_DATA_DIR": str(data), "VDATA_CONTRIBUTE": "never"}
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts), "-k", "k", env=env)
    assert r.returncode == 2 and "checksum mismatch" in r.stderr and "bias_attribute_words.json" in r.stderr
    assert server.requests == 0 and not (tmp_path / "x.jsonl").exists()
