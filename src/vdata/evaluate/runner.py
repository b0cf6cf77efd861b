"""Running benchmarks: locate and check data, score with a model (or read predictions), aggregate.

`run_model(model, settings)` and `run_from_predictions(path, settings)` are the pipeline's entry points;
they return the results (and predictions) and print nothing. Each benchmark is handled by its task type
(`vdata/evaluate/tasks/`), looked up through the registry.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdata import __version__
from vdata.core.benchdata import locate
from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.core.progress import ProgressFactory, no_progress
from vdata.evaluate.definitions import BenchmarkDef
from vdata.evaluate.registry import get_benchmarks, task_of
from vdata.evaluate.settings import EvalSettings
from vdata.evaluate.tasks.base import TaskType


@dataclass
class PreparedBenchmark:
    definition: BenchmarkDef
    task: TaskType[Any, Any]
    files: dict[str, Path]
    data: Any  # what `task.load` returned


def prepare(settings: EvalSettings) -> list[PreparedBenchmark]:
    """Locate and checksum every data file and load the examples. No model needed."""
    if settings.ppl_text is not None and not settings.ppl_text.is_file():
        raise UserError(f"--ppl-text {settings.ppl_text} does not exist; give a plain-text file")
    prepared = []
    for d in get_benchmarks(settings.benchmarks):
        task = task_of(d)
        files = {rel: locate(rel, settings.data_dir) for rel in d.data_files(settings.split)}
        groups = d.resolve_groups(settings.bias_types)
        data = task.load(d, files, groups, split=settings.split, limit=settings.limit)
        prepared.append(PreparedBenchmark(d, task, files, data))
    return prepared


def _base_provenance(prepared: Sequence[PreparedBenchmark], settings: EvalSettings) -> dict[str, Any]:
    import numpy

    return {
        "vdata_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": {rel: sha256_file(path) for pb in prepared for rel, path in pb.files.items()},
        "benchmarks": [pb.definition.name for pb in prepared],
        "split": settings.split,
        "bias_types": settings.bias_types,
        "limit": settings.limit,
        "bootstrap": {"resamples": settings.resamples, "seed": settings.seed},
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def run_model(
    model: str, settings: EvalSettings, progress: ProgressFactory = no_progress
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate `model`; returns (results, predictions). Raises UserError before any work on bad input."""
    prepared = prepare(settings)
    from vdata.lm.models import load_model
    from vdata.lm.scorer import scorer_for

    started = time.perf_counter()
    lm = load_model(model, dtype=settings.dtype)
    scorer = scorer_for(
        lm, start_token=settings.start_token, batch_size=settings.batch_size, progress=progress
    )
    pair_scorer = scorer
    if settings.crows_protocol == "lm-eval":
        from vdata.lm.lmeval import LmEvalScorer

        pair_scorer = LmEvalScorer(
            lm, prefix_token=settings.start_token, batch_size=settings.batch_size, progress=progress
        )
    perplexity = None
    if settings.ppl_text is not None:  # first: a model without perplexity fails before the long part
        text = settings.ppl_text.read_text(encoding="utf-8", errors="replace")
        perplexity = scorer.text_perplexity(text)
    results: dict[str, Any] = {"model": model}
    predictions: dict[str, Any] = {"intrasentence": [], "intersentence": []}
    for pb in prepared:
        scored = pb.task.score(pb.definition, pb.data, pair_scorer if pb.task.scores_pairs else scorer)
        results[pb.definition.name] = block = pb.task.aggregate(
            pb.definition, pb.data, scored.scores, resamples=settings.resamples, seed=settings.seed
        )
        if pb.task.scores_pairs and settings.crows_protocol == "lm-eval":
            from vdata.evaluate.crows_lmeval import add_lm_eval_figures

            add_lm_eval_figures(block, pb.data.pairs, scored.scores, pb.definition.summaries)
        predictions.update(scored.predictions)
    if perplexity is not None:
        results["perplexity"], results["perplexity_tokens"] = perplexity
    prov = _base_provenance(prepared, settings)
    prov.update(
        {
            "model": lm.provenance.get("model", model),
            "checkpoint": lm.checkpoint,
            "model_sha256": lm.provenance.get("model_sha256"),
            "adapter_sha256": lm.provenance.get("adapter_sha256"),
            "base_model": lm.provenance.get("base_model"),
            **scorer.provenance(),
            "crows_protocol": settings.crows_protocol,
            **(pair_scorer.provenance() if pair_scorer is not scorer else {}),
            "batch_size": settings.batch_size,
            "dtype": settings.dtype,
            "torch": _version("torch"),
            "transformers": _version("transformers"),
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
    )
    results["provenance"] = prov
    predictions["vdata"] = {
        "model": model,
        "split": settings.split,
        "vdata_version": __version__,
        "crows_protocol": settings.crows_protocol,
    }
    return results, predictions


def _version(module: str) -> str:
    import importlib

    return getattr(importlib.import_module(module), "__version__", "?")


def run_from_predictions(path: Path, settings: EvalSettings) -> dict[str, Any]:
    """Re-aggregate a predictions file (upstream StereoSet format, plus vdata's pair lists)."""
    prepared = prepare(settings)
    started = time.perf_counter()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"predictions file {path} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"predictions file {path} is not JSON ({e})") from e
    written_by = doc.get("vdata", {}) if isinstance(doc, dict) else {}
    protocol = written_by.get("crows_protocol", "bias-bench")
    if protocol != settings.crows_protocol:
        raise UserError(
            f"{path} holds pair scores of the {protocol} protocol; pass --crows-protocol {protocol}"
        )
    results: dict[str, Any] = {"model": written_by.get("model") or f"predictions:{path.name}"}
    for pb in prepared:
        scores = pb.task.scores_from_predictions(pb.definition, pb.data, doc, path)
        results[pb.definition.name] = block = pb.task.aggregate(
            pb.definition, pb.data, scores, resamples=settings.resamples, seed=settings.seed
        )
        if pb.task.scores_pairs and protocol == "lm-eval":
            from vdata.evaluate.crows_lmeval import add_lm_eval_figures

            add_lm_eval_figures(block, pb.data.pairs, scores, pb.definition.summaries)
    prov = _base_provenance(prepared, settings)
    prov.update(
        {
            "from_predictions": str(path),
            "crows_protocol": protocol,
            "predictions_sha256": sha256_file(path),
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
    )
    results["provenance"] = prov
    return results
