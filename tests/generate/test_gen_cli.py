"""`vdata gen` / `vdata schema gen` on the command line: help, schema, and every bad-input case (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def vdata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "vdata.cli", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=120,
    )
    r.stderr = " ".join(r.stderr.split())  # Rich wraps long messages at the terminal width
    return r


def test_help_shows_an_example_options_file() -> None:
    r = vdata("gen", "--help")
    assert r.returncode == 0
    assert '"provider": "openai"' in r.stdout and '"categories"' in r.stdout and "OPENAI_API_KEY" in r.stdout


def test_schema_gen_is_json_schema_with_every_key() -> None:
    r = vdata("schema", "gen")
    schema = json.loads(r.stdout)
    props = schema["properties"]
    for key in (
        "provider",
        "model",
        "base_url",
        "strategy",
        "categories",
        "count",
        "temperature",
        "max_tokens",
        "seed",
        "concurrency",
        "rate_limit",
        "budget_usd",
        "format",
        "prompts",
    ):
        assert key in props, key
    assert schema["additionalProperties"] is False
    assert set(props["strategy"]["enum"]) >= {"targeted", "general", "attributed", "simple"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"count": 5, "colour": "blue"}, ["unknown option 'colour'", "allowed keys", "categories"]),
        ({"count": "many"}, ["option 'count'", "integer"]),
        (
            {"categories": ["gender", "astrology"]},
            ["option 'categories'", "astrology", "race+gender", "religion"],
        ),
        ({"strategy": "magic"}, ["option 'strategy'", "'targeted'", "'attributed'"]),
        ({"provider": "anthropic"}, ["option 'provider'", "'local'", "'openai'", "'gemini'"]),
        ({"rate_limit": {"rps": 3}}, ["unknown option 'rate_limit.rps'", "rpm, tpm"]),
        ({"format": "xlsx"}, ["option 'format'", "'parquet'"]),
        ({"temperature": 9}, ["option 'temperature'", "less than or equal to 2"]),
        ({"provider": "local", "base_url": "http://x"}, ["base_url is only used with provider 'openai'"]),
    ],
)
def test_invalid_options_exit_2_and_write_nothing(tmp_path: Path, options: dict, expected: list[str]) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps(options))
    out = tmp_path / "out" / "x.jsonl"
    r = vdata("gen", str(out), str(opts))
    assert r.returncode == 2, r.stderr
    for text in expected:
        assert text in r.stderr, (text, r.stderr)
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "o.json"
    bad.write_text("{count: 3}")
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(bad))
    assert r.returncode == 2 and "not valid JSON at line 1" in r.stderr
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.parametrize(
    ("provider", "variable"), [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")]
)
def test_missing_api_key_names_the_variable(tmp_path: Path, provider: str, variable: str) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"provider": provider}))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"APIKEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"}
    }
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts), env=env)
    assert r.returncode == 2 and variable in r.stderr and "-k" in r.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_unwritable_out_fails_before_any_request(stub, tmp_path: Path) -> None:
    server = stub()
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"provider": "openai", "model": "stub", "base_url": server.base_url}))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = vdata("gen", str(blocker / "out.jsonl"), str(opts), "-k", "k")
    assert r.returncode == 2 and "cannot create the folder" in r.stderr
    (tmp_path / "d.jsonl").mkdir()
    r = vdata("gen", str(tmp_path / "d.jsonl"), str(opts), "-k", "k")
    assert r.returncode == 2 and "is a directory" in r.stderr
    assert server.requests == 0


def test_unknown_extension_and_bad_prompts_file(tmp_path: Path) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"count": 2}))
    r = vdata("gen", str(tmp_path / "x.txt"), str(opts))
    assert r.returncode == 2 and ".jsonl, .csv or .parquet" in r.stderr
    opts.write_text(json.dumps({"count": 2, "prompts": str(tmp_path / "mine.yaml")}))
    r = vdata("gen", str(tmp_path / "x.jsonl"), str(opts))
    assert r.returncode == 2 and "prompts file" in r.stderr and "not found" in r.stderr


def test_quiet_prints_nothing_and_user_prompts_override(stub, tmp_path: Path) -> None:
    server = stub()
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "name: simple\nversion: 7\nstages:\n  sentences:\n    messages:\n"
        "      - role: user\n        content: 'Write {n} sentences that break {category_words} stereotypes about: "
        "nurse, pilot.'\n"
    )
    opts = tmp_path / "o.json"
    opts.write_text(
        json.dumps(
            {
                "provider": "openai",
                "model": "stub",
                "base_url": server.base_url,
                "strategy": "simple",
                "count": 4,
                "per_request": 2,
                "prompts": str(mine),
            }
        )
    )
    env = {**os.environ, "VDATA_CACHE_DIR": str(tmp_path / "cache")}
    r = vdata("gen", str(tmp_path / "x.csv"), str(opts), "-k", "k", "--quiet", env=env)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    from vdata.core.io import read_records

    records = read_records(tmp_path / "x.csv")
    assert len(records) == 4 and {r.target for r in records} <= {"nurse", "pilot"}
    assert all(r.params["template"] == "simple@7" for r in records)
