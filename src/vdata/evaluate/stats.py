"""Seedable bootstrap confidence intervals (resampling examples with replacement)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) matrix: how often each example is drawn in each bootstrap sample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) if n else np.zeros((resamples, 0))


def percentile_interval(values: np.ndarray) -> list[float]:
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return [round(float(lo), 2), round(float(hi), 2)]


def bootstrap_rate(successes: Sequence[bool], resamples: int, seed: int = 0) -> list[float]:
    """95% interval of 100 * mean(successes)."""
    x = np.asarray(successes, dtype=float)
    if x.size == 0:
        return [float("nan"), float("nan")]
    counts = resample_counts(x.size, resamples, seed)
    return percentile_interval(100.0 * (counts @ x) / x.size)


def bootstrap_macro(
    values: Sequence[float],
    group_index: Sequence[int],
    n_groups: int,
    resamples: int,
    seed: int = 0,
) -> list[float]:
    """95% interval of the unweighted mean over groups of 100 * (per-group mean of `values`).

    Groups absent from a bootstrap sample are left out of that sample's mean, as the original
    aggregation only averages over targets it has seen.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return [float("nan"), float("nan")]
    onehot = np.zeros((x.size, n_groups))
    onehot[np.arange(x.size), np.asarray(group_index)] = 1.0
    counts = resample_counts(x.size, resamples, seed)
    totals = counts @ onehot
    hits = counts @ (onehot * x[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = 100.0 * hits / totals
    return percentile_interval(np.nanmean(per_group, axis=1))


def _macro_means(x: np.ndarray, group_index: Sequence[int], n_groups: int, counts: np.ndarray) -> np.ndarray:
    """100 * unweighted mean over groups of the per-group mean of `x`, for each row of `counts`."""
    onehot = np.zeros((x.size, n_groups))
    onehot[np.arange(x.size), np.asarray(group_index, dtype=int)] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = 100.0 * (counts @ (onehot * x[:, None])) / (counts @ onehot)
    return np.nanmean(per_group, axis=1)


def paired_distance_change(
    before: Sequence[float],
    after: Sequence[float],
    group_index: Sequence[int],
    n_groups: int,
    resamples: int,
    seed: int = 0,
) -> dict[str, float | list[float]]:
    """How far a bias score (50 = unbiased) moved from 50, with PAIRED 95% intervals.

    `before` and `after` are per-example outcomes (1 = the stereotype was preferred) of the same examples;
    the score is the macro average over groups of 100 * mean outcome (one group: the plain rate, as
    CrowS-Pairs; targets: StereoSet's SS). Each bootstrap sample draws the same examples before and after.
    Returns `change` = |after - 50| - |before - 50| (negative: toward 50) and `reduction_pct` =
    100 * (|before - 50| - |after - 50|) / |before - 50|, each with its interval (`*_ci`).
    """
    b = np.asarray(before, dtype=float)
    a = np.asarray(after, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"paired outcomes differ in length: {b.size} before, {a.size} after")
    if b.size == 0:
        nan = float("nan")
        return {"change": nan, "change_ci": [nan, nan], "reduction_pct": nan, "reduction_pct_ci": [nan, nan]}
    point = np.ones((1, b.size))
    d0 = np.abs(_macro_means(b, group_index, n_groups, point) - 50)[0]
    d1 = np.abs(_macro_means(a, group_index, n_groups, point) - 50)[0]
    counts = resample_counts(b.size, resamples, seed)
    boot_d0 = np.abs(_macro_means(b, group_index, n_groups, counts) - 50)
    boot_d1 = np.abs(_macro_means(a, group_index, n_groups, counts) - 50)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_reduction = np.where(boot_d0 > 0, 100.0 * (boot_d0 - boot_d1) / boot_d0, np.nan)
    return {
        "change": round(float(d1 - d0), 4),
        "change_ci": percentile_interval(boot_d1 - boot_d0),
        "reduction_pct": round(float(100 * (d0 - d1) / d0), 4) if d0 > 0 else float("nan"),
        "reduction_pct_ci": percentile_interval(boot_reduction),
    }
