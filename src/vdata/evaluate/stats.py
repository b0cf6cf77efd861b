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
