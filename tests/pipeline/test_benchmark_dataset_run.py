"""`vdata benchmark-dataset` end to end at small sizes: a tiny random Llama (the code paths), the embedded
SmolLM2 once (slow), resume by fingerprint, skipped categories, the history plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vdata.core.benchdata import locate
from vdata.core.han import parse_han_row
from vdata.core.io import write_records
from vdata.core.records import Record
from vdata.evaluate import stereoset
from vdata.pipeline.benchmark_dataset import BenchmarkDataset
from vdata.pipeline.benchmark_settings import BenchmarkSettings

CATEGORY_KEYS = {
    "status", "reason", "train_records", "stereoset", "crows_pairs", "perplexity", "verdict",
}  # fmt: skip
STEREOSET_KEYS = {
    "split", "ss_before", "ss_after", "ss_ci_after", "bias_cut_pct", "bias_cut_ci", "lms_before", "lms_after",
}  # fmt: skip


def han_records(data_dir: Path, folder: str, category: str, n: int) -> list[Record]:
    rows = json.loads(locate(f"han2024-synthetic/Targeted_Debiasing/{folder}_1S.json", data_dir).read_text())
    out = []
    for row in rows[:n]:
        han = parse_han_row(row)
        assert han is not None
        out.append(Record(text=han.text, target=han.target, attribute=han.attribute, category=category))
    return out


@pytest.fixture
def dataset(tmp_path: Path, data_dir: Path) -> Path:
    """60 gender records (measured), 12 religion (too few), 3 without a category."""
    recs = (
        han_records(data_dir, "Gender/Synthetic_Gender", "gender", 60)
        + han_records(data_dir, "Religion/Synthetic_Religion", "religion", 12)
        + [
            Record(text=f"Everyone can learn to cook dish {i}.", target="everyone", attribute="cook")
            for i in range(3)
        ]
    )
    path = tmp_path / "data.jsonl"
    write_records(recs, path)
    return path


def settings(source: Path, out: Path, model: str, **extra: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {
        "source": str(source),
        "out": out,
        "model": model,
        "sample": 24,
        "min_records": 30,
        "eval_limit": 8,
        "ppl_sentences": 10,
        "resamples": 200,
        "audit_embed_sample": 0,
        "audit_sample": 20,
    }
    return BenchmarkSettings(**(values | extra))


def check_shape(doc: dict[str, Any]) -> None:
    assert set(doc) == {"schema", "created", "source", "model", "settings", "versions", "audit", "categories"}
    assert doc["schema"] == "vdata.benchmark/1" and doc["created"].endswith("Z")
    assert set(doc["source"]) == {"kind", "snapshot_id", "data_sha256", "records", "records_by_category"}
    assert set(doc["model"]) == {"name", "sha256"} and len(doc["model"]["sha256"]) == 64
    assert {"vdata", "torch", "transformers"} <= set(doc["versions"])
    for c in doc["categories"].values():
        assert set(c) == CATEGORY_KEYS
        if c["status"] == "measured":
            assert set(c["stereoset"]) == STEREOSET_KEYS and c["stereoset"]["split"] == "test"
            assert set(c["crows_pairs"]) == {"score_before", "score_after", "ci_after"}
            assert set(c["perplexity"]) == {"before", "after"}
            assert c["verdict"] in {"debiases", "trade-off", "no effect", "worse"}


def test_tiny_model_run_then_resume_then_history(tmp_path: Path, dataset: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "run"
    first = BenchmarkDataset(settings(dataset, out, str(tiny_llama_dir))).run()
    text = (out / "benchmark.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"benchmark.json holds {c}: not strict JSON"))
    check_shape(doc)
    assert doc == first.document
    assert doc["source"]["kind"] == "files" and doc["source"]["records"] == 75
    assert doc["source"]["records_by_category"] == {"gender": 60, "religion": 12, "uncategorised": 3}
    gender = doc["categories"]["gender"]
    assert gender["status"] == "measured" and gender["train_records"] == 24
    assert doc["categories"]["religion"] == {
        "status": "skipped",
        "reason": "12 clean records, fewer than --min-records 30",
        "train_records": 0,
        "stereoset": None,
        "crows_pairs": None,
        "perplexity": None,
        "verdict": None,
    }
    assert "without a category" in doc["categories"]["uncategorised"]["reason"]
    assert [r.name for r in first.steps] == [
        "audit",
        "eval-base",
        "sample-gender",
        "debias-gender",
        "eval-gender",
    ]
    assert {r.status for r in first.steps} == {"ran"}

    # The figures are those of the two evaluations: SS from the results files, the paired interval holds
    # the point estimate.
    before = json.loads((out / "eval" / "base.json").read_text())
    after = json.loads((out / "eval" / "gender.json").read_text())
    s = gender["stereoset"]
    assert s["ss_before"] == round(before["stereoset"]["intrasentence"]["gender"]["SS"], 2)
    assert s["ss_after"] == round(after["stereoset"]["intrasentence"]["gender"]["SS"], 2)
    assert gender["crows_pairs"]["score_after"] == after["crows_pairs"]["gender"]["metric"]
    assert gender["perplexity"]["before"] == round(before["perplexity"], 2)
    # SS recomputed from the per-sentence predictions (what the paired bootstrap resamples) is the reported SS.
    preds = json.loads((out / "eval" / "gender.predictions.json").read_text())
    scores = {r["id"]: r["score"] for r in preds["intrasentence"]}
    examples = stereoset.load_examples(locate("stereoset/test.json"), ["gender"], 8)
    assert round(stereoset.aggregate(examples, scores)["SS"], 2) == s["ss_after"]
    report = (out / "report.md").read_text()
    assert "| gender | 60 | measured (24 trained)" in report and "skipped: 12 clean records" in report
    # The setting as trained (the method's default lr resolved), in benchmark.json and the report.
    assert (
        doc["settings"]["training"]["lr"] == 3e-4 and doc["settings"]["training"]["objective"] == "attribute"
    )
    assert "(bottleneck, attribute objective, lr 0.0003, 1 epoch(s)" in report
    assert (out / "bias.png").stat().st_size > 0 and not (out / "history.png").exists()

    model_files = {p: p.stat().st_mtime_ns for p in (out / "models").rglob("*") if p.is_file()}
    second = BenchmarkDataset(settings(dataset, out, str(tiny_llama_dir))).run()
    assert [r.status for r in second.steps] == ["skipped"] * 5  # no training, no evaluation
    assert {p: p.stat().st_mtime_ns for p in (out / "models").rglob("*") if p.is_file()} == model_files
    assert second.document["categories"] == doc["categories"]

    # A new run with another sample size retrains, reuses the audit and the base evaluation, and plots the
    # history of both runs.
    third = BenchmarkDataset(
        settings(dataset, tmp_path / "run2", str(tiny_llama_dir), sample=30, history=[out])
    ).run()
    assert third.document["categories"]["gender"]["train_records"] == 30
    assert (tmp_path / "run2" / "history.png").stat().st_size > 0
    assert "History: 1 earlier run(s)" in (tmp_path / "run2" / "report.md").read_text()

    changed = BenchmarkDataset(settings(dataset, out, str(tiny_llama_dir), sample=30)).run()
    statuses = {r.name: r.status for r in changed.steps}
    assert statuses == {
        "audit": "skipped",
        "eval-base": "skipped",
        "sample-gender": "ran",
        "debias-gender": "ran",
        "eval-gender": "ran",
    }
    assert len(list((out / "models" / "gender").iterdir())) == 1  # the older model folder is removed


def test_category_below_threshold_everywhere_writes_a_result_without_training(
    tmp_path: Path, dataset: Path, tiny_llama_dir: Path
) -> None:
    run = BenchmarkDataset(settings(dataset, tmp_path / "out", str(tiny_llama_dir), min_records=1000)).run()
    assert [r.name for r in run.steps] == ["audit"]
    assert {c["status"] for c in run.document["categories"].values()} == {"skipped"}
    assert "60 clean records, fewer than --min-records 1000" in run.document["categories"]["gender"]["reason"]
    assert not (tmp_path / "out" / "bias.png").exists()


@pytest.mark.slow
def test_embedded_model_measures_a_category(tmp_path: Path, dataset: Path) -> None:
    run = BenchmarkDataset(
        settings(dataset, tmp_path / "out", "smollm2-135m", sample=32, eval_limit=12)
    ).run()
    check_shape(run.document)
    gender = run.document["categories"]["gender"]
    assert gender["status"] == "measured" and gender["train_records"] == 32
    base = json.loads((tmp_path / "out" / "eval" / "base.json").read_text())
    # The base model's figures are the embedded model's (vdata eval's first 12 gender examples).
    assert base["model"] == "smollm2-135m" and gender["stereoset"]["ss_before"] == round(
        base["stereoset"]["intrasentence"]["gender"]["SS"], 2
    )
    lo, hi = gender["stereoset"]["bias_cut_ci"]
    assert lo <= hi
    assert run.document["model"]["sha256"] == base["provenance"]["model_sha256"]
