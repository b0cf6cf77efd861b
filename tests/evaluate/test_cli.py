"""`vdata eval` end to end: a real run on SmolLM2, re-aggregation, compare, and bad input (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def vdata(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vdata.cli", "eval", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir) -> Path:
    """One real run: SmolLM2 on the first 2 examples of every StereoSet domain and CrowS type."""
    out = tmp_path_factory.mktemp("eval")
    (out / "corpus.txt").write_text(
        "The weather was mild, so the children played outside until dinner.\n" * 3
    )
    proc = vdata(
        "smollm2-135m",
        "--benchmarks",
        "stereoset,crows_pairs",
        "--limit",
        "2",
        "--out",
        str(out / "results.json"),
        "--predictions-out",
        str(out / "preds.json"),
        "--quiet",
        "--resamples",
        "200",
        "--ppl-text",
        str(out / "corpus.txt"),
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
def test_end_to_end_results_have_the_issue_s_keys(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    intra = results["stereoset"]["intrasentence"]
    assert results["stereoset"]["split"] == "test"
    assert list(intra) == ["gender", "profession", "race", "religion", "overall"]
    for row in intra.values():
        assert {"SS", "LMS", "ICAT", "n", "ss_ci95"} <= set(row)
        assert 0 <= row["SS"] <= 100 and 0 <= row["LMS"] <= 100
        assert row["ICAT"] == pytest.approx(row["LMS"] * min(row["SS"], 100 - row["SS"]) / 50)
    assert intra["overall"]["n"] == 8
    crows = results["crows_pairs"]
    assert list(crows)[:3] == ["gender", "race-color", "religion"]
    assert len([k for k in crows if k not in {"bias_bench", "all"}]) == 9
    assert crows["bias_bench"]["n"] == 6 and crows["all"]["n"] == 18
    for row in crows.values():
        assert {"metric", "n", "ci95"} <= set(row)
    assert 1.0 < results["perplexity"] < 1000.0 and results["perplexity_tokens"] > 30
    prov = results["provenance"]
    assert prov["start_token"] == "<|im_start|>" and prov["batch_size"] == 64 and prov["dtype"] == "float32"
    assert prov["data_sha256"]["stereoset/test.json"].startswith("f3f70d18")
    assert prov["model_sha256"] and prov["wall_seconds"] > 0 and prov["vdata_version"]
    assert (run_dir / "results.md").read_text().startswith("# vdata eval")
    assert (run_dir / "results.png").read_bytes()[:4] == b"\x89PNG"
    preds = json.loads((run_dir / "preds.json").read_text())
    assert len(preds["intrasentence"]) == 24 and preds["intersentence"] == []
    assert all(0 < row["score"] <= 1 for row in preds["intrasentence"])  # geometric-mean token probability


@pytest.mark.slow
def test_reaggregating_predictions_reproduces_the_run(run_dir: Path, tmp_path: Path) -> None:
    proc = vdata(
        "--from-predictions",
        str(run_dir / "preds.json"),
        "--benchmarks",
        "stereoset,crows_pairs",
        "--limit",
        "2",
        "--out",
        str(tmp_path / "again.json"),
        "--quiet",
        "--resamples",
        "200",
    )
    assert proc.returncode == 0, proc.stderr
    before = json.loads((run_dir / "results.json").read_text())
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["stereoset"] == before["stereoset"] and again["crows_pairs"] == before["crows_pairs"]

    # An upstream-format file (StereoSet only) gives the same StereoSet numbers.
    preds = json.loads((run_dir / "preds.json").read_text())
    upstream = {"intrasentence": preds["intrasentence"], "intersentence": []}
    (tmp_path / "upstream.json").write_text(json.dumps(upstream))
    proc = vdata(
        "--from-predictions",
        str(tmp_path / "upstream.json"),
        "--benchmarks",
        "stereoset",
        "--limit",
        "2",
        "--out",
        str(tmp_path / "up.json"),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "up.json").read_text())["stereoset"] == before["stereoset"]

    proc = vdata(
        "compare",
        str(run_dir / "results.json"),
        str(tmp_path / "again.json"),
        "--out",
        str(tmp_path / "cmp.md"),
    )
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "cmp.md").read_text()
    assert "| stereoset | overall SS |" in table and "0 change(s)" in table

    # Paired intervals from the two runs' predictions: the same predictions moved nothing, so every
    # category's verdict is "no effect" and no trade-off headline appears.
    preds_file = str(run_dir / "preds.json")
    proc = vdata(
        "compare",
        str(run_dir / "results.json"),
        str(tmp_path / "again.json"),
        "--predictions",
        f"{preds_file},{preds_file}",
        "--limit",
        "2",
        "--out",
        str(tmp_path / "paired.md"),
    )
    assert proc.returncode == 0, proc.stderr
    paired = (tmp_path / "paired.md").read_text()
    assert "**gender: no effect**" in paired and "Not a win" not in paired
    proc = vdata(
        "compare", str(run_dir / "results.json"), str(tmp_path / "again.json"), "--predictions", preds_file
    )
    assert proc.returncode == 2 and "two files" in proc.stderr


def _bad(proc: subprocess.CompletedProcess, needle: str, out: Path) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert needle in " ".join(proc.stderr.split()), proc.stderr
    assert not out.exists() and not out.with_suffix(".md").exists()


def test_unknown_model_is_exit_2_without_results(tmp_path: Path, data_dir) -> None:
    out = tmp_path / "r.json"
    _bad(vdata("no-such/model-xyz", "--limit", "1", "--out", str(out), "--quiet"), "cannot load model", out)


def test_unknown_benchmark_and_bad_split(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    _bad(vdata("--benchmarks", "stereoset,seat9", "--out", str(out), "--quiet"), "unknown benchmark", out)
    _bad(vdata("--split", "train", "--out", str(out), "--quiet"), "--split must be test or dev", out)


def test_missing_benchmark_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "r.json"
    env = {"VDATA_DATA_DIR": str(empty), "VDATA_CACHE_DIR": str(tmp_path / "cache")}
    proc = vdata(
        "--benchmarks", "crows_pairs", "--data-dir", str(empty), "--out", str(out), "--quiet", env=env
    )
    _bad(proc, "crows_pairs/crows_pairs_anonymized.csv not found", out)


def test_checksum_mismatch_names_the_file(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "data" / "crows_pairs"
    bad.mkdir(parents=True)
    text = (data_dir / "crows_pairs" / "crows_pairs_anonymized.csv").read_text()
    (bad / "crows_pairs_anonymized.csv").write_text(text.replace("black", "white", 1))
    out = tmp_path / "r.json"
    proc = vdata(
        "--benchmarks", "crows_pairs", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--quiet"
    )
    _bad(proc, "checksum mismatch", out)
    assert "crows_pairs_anonymized.csv" in proc.stderr


def test_predictions_with_unknown_ids_or_missing_sentences(tmp_path: Path, data_dir: Path) -> None:
    raw = json.loads((data_dir / "stereoset" / "dev.json").read_text())["data"]["intrasentence"][:1]
    rows = [{"id": s["id"], "score": 0.5} for s in raw[0]["sentences"]]
    out = tmp_path / "r.json"
    (tmp_path / "unknown.json").write_text(
        json.dumps({"intrasentence": [*rows, {"id": "nope", "score": 1.0}]})
    )
    proc = vdata(
        "--from-predictions",
        str(tmp_path / "unknown.json"),
        "--benchmarks",
        "stereoset",
        "--split",
        "dev",
        "--limit",
        "1",
        "--out",
        str(out),
        "--quiet",
    )
    _bad(proc, "unknown sentence id 'nope'", out)
    (tmp_path / "missing.json").write_text(json.dumps({"intrasentence": rows[:2], "intersentence": []}))
    proc = vdata(
        "--from-predictions",
        str(tmp_path / "missing.json"),
        "--benchmarks",
        "stereoset",
        "--split",
        "dev",
        "--limit",
        "1",
        "--bias-types",
        raw[0]["bias_type"],
        "--out",
        str(out),
        "--quiet",
    )
    _bad(proc, "1 sentence(s) of the evaluated examples have no score", out)
    # the whole first dev example scored: a results file appears
    (tmp_path / "ok.json").write_text(json.dumps({"intrasentence": rows, "intersentence": []}))
    proc = vdata(
        "--from-predictions",
        str(tmp_path / "ok.json"),
        "--benchmarks",
        "stereoset",
        "--split",
        "dev",
        "--limit",
        "1",
        "--bias-types",
        raw[0]["bias_type"],
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())["stereoset"]["intrasentence"]
    assert result["overall"]["SS"] == 0.0  # all scores tie: ties count as anti-stereotype
    assert result["overall"]["LMS"] == 0.0


def test_compare_rejects_missing_files(tmp_path: Path) -> None:
    proc = vdata(
        "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "c.md")
    )
    assert proc.returncode == 2 and "does not exist" in " ".join(proc.stderr.split())


def test_masked_lm_end_to_end_with_tiny_bert(tmp_path: Path, data_dir: Path, tiny_bert_dir: Path) -> None:
    """The masked scorers through the CLI: a tiny random BERT with the bert-base-uncased vocabulary."""
    out = tmp_path / "r.json"
    proc = vdata(
        str(tiny_bert_dir),
        "--benchmarks",
        "stereoset,crows_pairs,biastestgpt",
        "--limit",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--resamples",
        "100",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["provenance"]["model_kind"] == "masked" and results["provenance"]["start_token"] is None
    assert results["stereoset"]["intrasentence"]["overall"]["n"] == 8
    assert results["crows_pairs"]["all"]["n"] + results["crows_pairs"]["all"]["skipped"] == 18
    assert results["biastestgpt"]["all"]["n"] == 12
    ppl = tmp_path / "t.txt"
    ppl.write_text("Some text.")
    _bad(
        vdata(
            str(tiny_bert_dir),
            "--benchmarks",
            "crows_pairs",
            "--limit",
            "1",
            "--ppl-text",
            str(ppl),
            "--out",
            str(tmp_path / "p.json"),
            "--quiet",
        ),
        "needs a causal LM",
        tmp_path / "p.json",
    )
