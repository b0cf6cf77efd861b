"""Adding a benchmark from outside the package: a new task type and a definition, registered from test
code alone, run through `run_model` and `run_from_predictions` on the tiny BERT (docs/evaluate.md,
"Adding a benchmark")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.evaluate import pairs, registry
from vdata.evaluate.definitions import BenchmarkDef
from vdata.evaluate.runner import run_from_predictions, run_model
from vdata.evaluate.settings import EvalSettings
from vdata.evaluate.tasks import base, task_names
from vdata.evaluate.tasks.base import Scored, TaskType, register_task
from vdata.lm.scorer import Scorer

DEFINITION = """
name: crows_mean_gap
title: CrowS mean gap
task: mean_pair_gap
loader: crows_pairs_csv
description: mean score(more) - score(less) per bias type (0 = no preference)
files: [crows_pairs/crows_pairs_anonymized.csv]
groups: [gender, religion]
"""


@pytest.fixture
def isolated_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the test registers is gone afterwards."""
    task_names()  # the built-in task types are registered before the registry is copied
    monkeypatch.setattr(base, "_TASK_TYPES", dict(base.registered_tasks()))
    monkeypatch.setattr(registry, "_BENCHMARKS", dict(registry.all_benchmarks()))


def register_mean_gap_task() -> None:
    @register_task
    class MeanPairGap(TaskType[list[pairs.Pair], dict[str, float]]):
        """A new task type: the mean score gap per group, over CrowS-style pairs."""

        name = "mean_pair_gap"

        def load(
            self,
            benchmark: BenchmarkDef,
            files: Mapping[str, Path],
            groups: Sequence[str],
            *,
            split: str,
            limit: int | None,
        ) -> list[pairs.Pair]:
            assert benchmark.loader is not None
            loaded = [p for path in files.values() for p in pairs.LOADERS[benchmark.loader](path)]
            return pairs.select(loaded, groups, limit)

        def score(
            self, benchmark: BenchmarkDef, data: list[pairs.Pair], scorer: Scorer
        ) -> Scored[dict[str, float]]:
            gaps = scorer.pair_differences([(p.more, p.less) for p in data], benchmark.name)
            scores = {p.id: g for p, g in zip(data, gaps, strict=True)}
            return Scored(scores, {benchmark.name: [{"id": k, "gap": v} for k, v in scores.items()]})

        def scores_from_predictions(
            self, benchmark: BenchmarkDef, data: list[pairs.Pair], doc: Any, source: Path
        ) -> dict[str, float]:
            return {row["id"]: row["gap"] for row in doc[benchmark.name]}

        def aggregate(
            self,
            benchmark: BenchmarkDef,
            data: list[pairs.Pair],
            scores: dict[str, float],
            *,
            resamples: int,
            seed: int,
        ) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for group in benchmark.groups:
                gaps = [scores[p.id] for p in data if p.group == group and not math.isnan(scores[p.id])]
                out[group] = {"mean_gap": sum(gaps) / len(gaps) if gaps else math.nan, "n": len(gaps)}
            return out


def test_a_definition_needs_a_registered_task(isolated_registries: None) -> None:
    with pytest.raises(ValueError, match="unknown task 'mean_pair_gap'"):
        registry.register_benchmark(yaml.safe_load(DEFINITION))
    with pytest.raises(UserError, match="unknown benchmark"):
        validate_settings(EvalSettings, {"benchmarks": "crows_mean_gap"}, source="test")


def test_a_benchmark_registered_from_test_code_runs(
    isolated_registries: None, tiny_bert_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    register_mean_gap_task()
    definition = registry.register_benchmark(yaml.safe_load(DEFINITION))
    assert definition.title == "CrowS mean gap" and "crows_mean_gap" in registry.all_benchmarks()

    settings = EvalSettings(benchmarks="crows_mean_gap,crows_pairs", limit=2, resamples=50, data_dir=data_dir)
    results, predictions = run_model(str(tiny_bert_dir), settings)
    gap = results["crows_mean_gap"]
    assert set(gap) == {"gender", "religion"} and gap["gender"]["n"] + gap["religion"]["n"] >= 3
    assert results["provenance"]["benchmarks"] == ["crows_mean_gap", "crows_pairs"]
    # the new benchmark's gaps are the built-in CrowS-Pairs scores' differences
    crows = {row["id"]: row["more"] - row["less"] for row in predictions["crows_pairs"]}
    for row in predictions["crows_mean_gap"]:
        assert row["gap"] == pytest.approx(crows[row["id"]]) or math.isnan(row["gap"])

    import json

    path = tmp_path / "preds.json"
    path.write_text(json.dumps(predictions))
    again = run_from_predictions(path, settings)
    assert again["crows_mean_gap"] == gap and again["crows_pairs"] == results["crows_pairs"]
