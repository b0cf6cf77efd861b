"""Running benchmarks: locate and check data, score with a model (or read predictions), aggregate."""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdata import __version__
from vdata.core.benchdata import locate, sha256_file
from vdata.core.errors import UserError
from vdata.evaluate import pairs as pairs_mod
from vdata.evaluate import stereoset as stereoset_mod
from vdata.evaluate.definitions import BenchmarkDef, get_benchmarks
from vdata.evaluate.stats import DEFAULT_RESAMPLES

DEFAULT_BENCHMARKS = ("stereoset", "crows_pairs")


@dataclass
class EvalOptions:
    benchmarks: Sequence[str] = DEFAULT_BENCHMARKS
    split: str = "test"
    bias_types: list[str] | None = None
    limit: int | None = None
    batch_size: int = 64
    start_token: str | None = None
    data_dir: str | None = None
    ppl_text: Path | None = None
    seed: int = 0
    resamples: int = DEFAULT_RESAMPLES
    progress: bool = True
    dtype: str = "float32"


@dataclass
class PreparedBenchmark:
    definition: BenchmarkDef
    groups: list[str]
    files: dict[str, Path]
    examples: list[stereoset_mod.Example] = field(default_factory=list)  # stereoset task
    all_examples: list[stereoset_mod.Example] = field(default_factory=list)
    pairs: list[pairs_mod.Pair] = field(default_factory=list)  # paired task
    all_pairs: list[pairs_mod.Pair] = field(default_factory=list)


def prepare(options: EvalOptions) -> list[PreparedBenchmark]:
    """Validate options, locate and checksum every data file, load the examples. No model needed."""
    if options.limit is not None and options.limit < 1:
        raise UserError("--limit must be a positive number of examples per domain / bias type")
    if options.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if options.ppl_text is not None and not options.ppl_text.is_file():
        raise UserError(f"--ppl-text {options.ppl_text} does not exist; give a plain-text file")
    prepared = []
    for d in get_benchmarks(list(options.benchmarks)):
        groups = d.resolve_groups(options.bias_types)
        if not groups:
            raise UserError(
                f"none of the bias types {options.bias_types} exists in {d.name}; "
                f"it has {', '.join(d.groups)}" + (f" (aliases: {d.aliases})" if d.aliases else "")
            )
        files = {rel: locate(rel, options.data_dir) for rel in d.data_files(options.split)}
        pb = PreparedBenchmark(d, groups, files)
        if d.task == "stereoset_intrasentence":
            path = next(iter(files.values()))
            pb.all_examples = stereoset_mod.load_examples(path, d.groups)
            pb.examples = stereoset_mod.load_examples(path, groups, options.limit)
        else:
            if d.loader not in pairs_mod.LOADERS:
                raise ValueError(f"benchmark {d.name}: unknown loader {d.loader!r}")
            loaded = [p for path in files.values() for p in pairs_mod.LOADERS[d.loader](path)]
            pb.all_pairs = loaded
            pb.pairs = pairs_mod.select(loaded, groups, options.limit)
        prepared.append(pb)
    return prepared


def _base_provenance(prepared: Sequence[PreparedBenchmark], options: EvalOptions) -> dict[str, Any]:
    import numpy

    return {
        "vdata_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": {rel: sha256_file(path) for pb in prepared for rel, path in pb.files.items()},
        "benchmarks": [pb.definition.name for pb in prepared],
        "split": options.split,
        "bias_types": options.bias_types,
        "limit": options.limit,
        "bootstrap": {"resamples": options.resamples, "seed": options.seed},
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def _stereoset_scores(
    lm: Any, pb: PreparedBenchmark, options: EvalOptions
) -> tuple[dict[str, float], dict[str, float]]:
    """(scores used for comparison, scores written to predictions) keyed by sentence id."""
    from vdata.lm import scoring

    if lm.kind == "masked":
        items = [(ex.context, text) for ex in pb.examples for _, text in ex.ordered()]
        values = scoring.stereoset_masked_scores(lm, items, options.batch_size, options.progress)
        ids = [sid for ex in pb.examples for sid, _ in ex.ordered()]
        scores = dict(zip(ids, values, strict=True))
        return scores, scores
    groups = [[text for _, text in ex.ordered()] for ex in pb.examples]
    logps = scoring.grouped_sentence_logprobs(
        lm, groups, options.batch_size, options.start_token, options.progress, "stereoset"
    )
    scores = {
        sid: lp
        for ex, g in zip(pb.examples, logps, strict=True)
        for (sid, _), lp in zip(ex.ordered(), g, strict=True)
    }
    # bias-bench writes the geometric-mean token probability; it orders sentences like the log-prob.
    return scores, {sid: math.exp(v) for sid, v in scores.items()}


def run_model(model: str, options: EvalOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate `model`; returns (results, predictions). Raises UserError before any work on bad input."""
    prepared = prepare(options)
    from vdata.lm import scoring
    from vdata.lm.models import load_model

    started = time.perf_counter()
    lm = load_model(model, dtype=options.dtype)
    if options.ppl_text is not None and lm.kind != "causal":
        raise UserError("--ppl-text needs a causal LM; perplexity is not defined for a masked LM")
    results: dict[str, Any] = {"model": model}
    predictions: dict[str, Any] = {"intrasentence": [], "intersentence": []}
    for pb in prepared:
        d = pb.definition
        if d.task == "stereoset_intrasentence":
            scores, written = _stereoset_scores(lm, pb, options)
            results[d.name] = {
                "split": options.split,
                "intrasentence": stereoset_mod.evaluate(
                    pb.examples, scores, pb.groups, options.resamples, options.seed
                ),
            }
            predictions.update(stereoset_mod.predictions_document(pb.examples, written))
        else:
            pair_scores = scoring.pair_scores(
                lm,
                [(p.more, p.less) for p in pb.pairs],
                options.batch_size,
                options.start_token,
                options.progress,
                d.name,
            )
            by_id = dict(zip([p.id for p in pb.pairs], pair_scores, strict=True))
            results[d.name] = pairs_mod.evaluate(
                pb.pairs, by_id, pb.groups, d.summaries, options.resamples, options.seed
            )
            predictions[d.name] = [
                {"id": p.id, "group": p.group, "more": s[0], "less": s[1]}
                for p, s in zip(pb.pairs, pair_scores, strict=True)
            ]
    if options.ppl_text is not None:
        text = options.ppl_text.read_text(encoding="utf-8", errors="replace")
        ppl, n_tokens = scoring.text_perplexity(lm, text, start_token=options.start_token)
        results["perplexity"] = ppl
        results["perplexity_tokens"] = n_tokens
    prov = _base_provenance(prepared, options)
    start_text, start_id = (
        scoring.resolve_start_token(lm.tokenizer, options.start_token)
        if lm.kind == "causal"
        else (None, None)
    )
    prov.update(
        {
            "model": lm.provenance.get("model", model),
            "checkpoint": lm.checkpoint,
            "model_sha256": lm.provenance.get("model_sha256"),
            "adapter_sha256": lm.provenance.get("adapter_sha256"),
            "base_model": lm.provenance.get("base_model"),
            "model_kind": lm.kind,
            "scorer": "bias-bench causal (start token + sentence)"
            if lm.kind == "causal"
            else "bias-bench masked (StereoSet template word, CrowS modified tokens)",
            "start_token": start_text,
            "start_token_id": start_id,
            "batch_size": options.batch_size,
            "dtype": options.dtype,
            "torch": _version("torch"),
            "transformers": _version("transformers"),
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
    )
    results["provenance"] = prov
    predictions["vdata"] = {"model": model, "split": options.split, "vdata_version": __version__}
    return results, predictions


def _version(module: str) -> str:
    import importlib

    return getattr(importlib.import_module(module), "__version__", "?")


def run_from_predictions(path: Path, options: EvalOptions) -> dict[str, Any]:
    """Re-aggregate a predictions file (upstream StereoSet format, plus vdata's pair lists)."""
    prepared = prepare(options)
    started = time.perf_counter()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"predictions file {path} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"predictions file {path} is not JSON ({e})") from e
    model = doc.get("vdata", {}).get("model") if isinstance(doc, dict) else None
    results: dict[str, Any] = {"model": model or f"predictions:{path.name}"}
    for pb in prepared:
        d = pb.definition
        if d.task == "stereoset_intrasentence":
            scores = stereoset_mod.scores_from_predictions(doc, str(path), pb.all_examples, pb.examples)
            results[d.name] = {
                "split": options.split,
                "intrasentence": stereoset_mod.evaluate(
                    pb.examples, scores, pb.groups, options.resamples, options.seed
                ),
            }
        else:
            results[d.name] = pairs_mod.evaluate(
                pb.pairs,
                _pair_scores_from_predictions(doc, d.name, pb, path),
                pb.groups,
                d.summaries,
                options.resamples,
                options.seed,
            )
    prov = _base_provenance(prepared, options)
    prov.update(
        {
            "from_predictions": str(path),
            "predictions_sha256": sha256_file(path),
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
    )
    results["provenance"] = prov
    return results


def _pair_scores_from_predictions(
    doc: Any, name: str, pb: PreparedBenchmark, path: Path
) -> dict[str, tuple[float, float]]:
    wanted = pb.pairs
    rows = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise UserError(
            f"{path} has no '{name}' predictions; drop {name} from --benchmarks or use a "
            "predictions file written by `vdata eval --predictions-out`"
        )
    known = {p.id for p in pb.all_pairs}
    scores: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        try:
            pid, more, less = str(row["id"]), float(row["more"]), float(row["less"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: {name}[{i}] is not {{'id', 'more', 'less'}}") from e
        if pid not in known:
            raise UserError(
                f"{path}: unknown {name} pair id {pid!r} ({name}[{i}]); the file does not "
                f"belong to this version of {name}"
            )
        scores[pid] = (more, less)
    missing = [p.id for p in wanted if p.id not in scores]
    if missing:
        raise UserError(
            f"{path}: {len(missing)} {name} pair(s) have no scores (first: {missing[0]}); "
            "pass the same --limit/--bias-types used to produce the file"
        )
    return scores
