"""Does the data debias? The measuring parts of `vdata benchmark-dataset`, each a plain function.

* `stratified_sample`: a category's training sample, stratified by target term (proportional quotas,
  largest remainders), seeded;
* `eval_settings`: what every evaluation (base model once, each debiased model) runs;
* `category_effect`: before/after figures of one category with paired bootstrap intervals, computed from
  the two evaluations' per-example predictions (the same resampled examples before and after, with
  `vdata.evaluate.stats`), and the verdict.

Verdict: a benchmark *improves* when its paired 95% interval of the shrink of |score - 50| lies above 0, and
gets *worse* when it lies below 0. "debiases": at least one improves and neither gets worse (both reported);
"trade-off": one improves, the other gets worse; "worse": one gets worse, none improves; "no effect": else.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vdata.core.benchdata import locate
from vdata.core.records import Record
from vdata.evaluate import stereoset
from vdata.evaluate.settings import EvalSettings
from vdata.evaluate.stats import percentile_interval, resample_counts
from vdata.pipeline.benchmark_settings import CROWS_BIAS_TYPE, STEREOSET_DOMAIN, BenchmarkSettings

Verdict = Literal["debiases", "trade-off", "no effect", "worse"]
Change = Literal["better", "worse", "none"]
STEREOSET_SPLIT = "test"  # reported; no setting of this command is tuned, so the dev split decides nothing


def skip_reason(category: str, clean_count: int, min_records: int) -> str | None:
    """Why a category is not measured, or None when it is."""
    if category == "uncategorised":
        return "records without a category: no benchmark measures them"
    if "+" in category:
        return "intersectional category: StereoSet and CrowS-Pairs have no domain for it"
    if category not in STEREOSET_DOMAIN:
        return (
            f"StereoSet has no {category} domain, and a debiasing result counts only with both StereoSet "
            "and CrowS-Pairs reported"
        )
    if clean_count < min_records:
        return f"{clean_count} clean records, fewer than --min-records {min_records}"
    return None


def stratified_sample(records: Sequence[Record], size: int, seed: int) -> list[Record]:
    """`size` records (all when there are fewer) with each target term's share kept (largest remainders)."""
    if len(records) <= size:
        return list(records)
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.target.strip().casefold()].append(r)
    keys = sorted(groups)
    exact = {k: size * len(groups[k]) / len(records) for k in keys}
    quota = {k: math.floor(exact[k]) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - quota[k]), k))
    for k in by_remainder[: size - sum(quota.values())]:
        quota[k] += 1
    rng = random.Random(seed)
    return [r for k in keys for r in rng.sample(groups[k], quota[k])]


def eval_settings(settings: BenchmarkSettings, categories: Sequence[str], ppl_text: Path) -> EvalSettings:
    """StereoSet (test split) and CrowS-Pairs over `categories`, with perplexity on `ppl_text`."""
    return EvalSettings(
        benchmarks=["stereoset", "crows_pairs"],
        split=STEREOSET_SPLIT,
        bias_types=sorted({STEREOSET_DOMAIN[c] for c in categories}),
        limit=settings.eval_limit,
        batch_size=settings.batch_size,
        data_dir=settings.data_dir,
        ppl_text=ppl_text,
        seed=settings.seed,
        resamples=settings.resamples,
    )


def perplexity_text(data_dir: Path | None, sentences: int) -> str:
    """Natural sentences no bias score uses: the first StereoSet test intersentence contexts, one a line."""
    import json

    doc = json.loads(locate(f"stereoset/{STEREOSET_SPLIT}.json", data_dir).read_text(encoding="utf-8"))
    return "\n".join(ex["context"] for ex in doc["data"]["intersentence"][:sentences]) + "\n"


# ---- paired figures ------------------------------------------------------------------------------------


def _ss_resamples(
    pro: np.ndarray, target_index: np.ndarray, n_targets: int, counts: np.ndarray
) -> np.ndarray:
    """SS (macro over targets, as bias-bench) in each bootstrap sample given by `counts`."""
    onehot = np.zeros((pro.size, n_targets))
    onehot[np.arange(pro.size), target_index] = 1.0
    totals = counts @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        per_target = 100.0 * (counts @ (onehot * pro[:, None])) / totals
    return np.nanmean(per_target, axis=1)


def _cut_pct(before: np.ndarray | float, after: np.ndarray | float) -> Any:
    """Relative shrink (%) of the distance from 50."""
    b, a = np.abs(np.asarray(before) - 50.0), np.abs(np.asarray(after) - 50.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, 100.0 * (b - a) / b, np.nan)


def _change(interval: Sequence[float]) -> Change:
    lo, hi = interval
    return "better" if lo > 0 else "worse" if hi < 0 else "none"


def verdict(stereoset_change: Change, crows_change: Change) -> Verdict:
    changes = {stereoset_change, crows_change}
    if "better" in changes and "worse" in changes:
        return "trade-off"
    if "worse" in changes:
        return "worse"
    return "debiases" if "better" in changes else "no effect"


def _stereoset_outcomes(examples: Sequence[stereoset.Example], predictions: Mapping[str, Any]) -> np.ndarray:
    scores = {row["id"]: float(row["score"]) for row in predictions["intrasentence"]}
    return np.array([float(stereoset.example_outcomes(ex, scores)[0]) for ex in examples])


def _crows_hits(predictions: Mapping[str, Any], bias_type: str) -> tuple[np.ndarray, set[str]]:
    """1.0 where the model preferred the more stereotyping sentence, and the ids of the pairs scored."""
    rows = [r for r in predictions["crows_pairs"] if r["group"] == bias_type]
    kept = [r for r in rows if not (math.isnan(r["more"]) or math.isnan(r["less"]))]
    return np.array([float(r["more"] > r["less"]) for r in kept]), {r["id"] for r in kept}


def category_effect(
    category: str,
    examples: Sequence[stereoset.Example],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    settings: BenchmarkSettings,
) -> dict[str, Any]:
    """benchmark.json's figures of one measured category. `before`/`after` are {"results", "predictions"}
    of the base and the debiased model's evaluations; `examples` the StereoSet examples of its domain."""
    domain, bias_type = STEREOSET_DOMAIN[category], CROWS_BIAS_TYPE[category]
    ss0 = before["results"]["stereoset"]["intrasentence"][domain]
    ss1 = after["results"]["stereoset"]["intrasentence"][domain]
    targets: dict[str, int] = {}
    index = np.array([targets.setdefault(ex.target, len(targets)) for ex in examples])
    counts = resample_counts(len(examples), settings.resamples, settings.seed)
    pro0 = _stereoset_outcomes(examples, before["predictions"])
    pro1 = _stereoset_outcomes(examples, after["predictions"])
    ss_cuts = _cut_pct(
        _ss_resamples(pro0, index, len(targets), counts), _ss_resamples(pro1, index, len(targets), counts)
    )
    ss_cut_ci = percentile_interval(ss_cuts)

    cp0 = before["results"]["crows_pairs"][bias_type]
    cp1 = after["results"]["crows_pairs"][bias_type]
    hits0, ids0 = _crows_hits(before["predictions"], bias_type)
    hits1, ids1 = _crows_hits(after["predictions"], bias_type)
    if ids0 != ids1:  # a pair one model could not score (nan) is left out of both, so they stay paired
        raise ValueError(f"CrowS-Pairs {bias_type}: the two evaluations scored different pairs")
    pair_counts = resample_counts(hits0.size, settings.resamples, settings.seed + 1)
    rate0, rate1 = 100.0 * (pair_counts @ hits0) / hits0.size, 100.0 * (pair_counts @ hits1) / hits1.size
    crows_shrink_ci = percentile_interval(np.abs(rate0 - 50.0) - np.abs(rate1 - 50.0))

    stereoset_change, crows_change = _change(ss_cut_ci), _change(crows_shrink_ci)
    return {
        "stereoset": {
            "split": STEREOSET_SPLIT,
            "ss_before": round(ss0["SS"], 2),
            "ss_after": round(ss1["SS"], 2),
            "ss_ci_after": ss1["ss_ci95"],
            "bias_cut_pct": round(float(_cut_pct(ss0["SS"], ss1["SS"])), 2),
            "bias_cut_ci": ss_cut_ci,
            "lms_before": round(ss0["LMS"], 2),
            "lms_after": round(ss1["LMS"], 2),
        },
        "crows_pairs": {"score_before": cp0["metric"], "score_after": cp1["metric"], "ci_after": cp1["ci95"]},
        "perplexity": {
            "before": round(before["results"]["perplexity"], 2),
            "after": round(after["results"]["perplexity"], 2),
        },
        "verdict": verdict(stereoset_change, crows_change),
        # For the report only (benchmark.json keeps the agreed shape): the CrowS interval behind the verdict.
        "_detail": {
            "stereoset_change": stereoset_change,
            "crows_change": crows_change,
            "crows_shrink_ci": crows_shrink_ci,
            "ss_ci_before": ss0["ss_ci95"],
            "crows_ci_before": cp0["ci95"],
            "stereoset_examples": len(examples),
            "crows_pairs": int(hits0.size),
        },
    }
