"""Stereotype direction: does the target model find the data's sentences more or less likely than their
CDA counterfactuals?

For each sampled sentence that mentions a word-list group, `vdata.core.cda.counterfactuals` swaps the
group terms (man <-> woman, jewish -> christian/muslim, ...). `Scorer.pair_differences` (`vdata.lm.scorer`)
(the same batched scorer `vdata eval` uses) returns, per pair, the model's score of the sentence minus
that of the counterfactual. Debiasing data is meant to *counter* the model's stereotypes, so a healthy
anti-stereotypical dataset has mostly negative differences: the model finds the data's version of the
sentence less likely than the swapped one. A share near 1 of positive differences means the data mostly
repeats what the model already believes, i.e. it reinforces its stereotypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vdata.core.cda import counterfactuals
from vdata.lm.models import LoadedModel

WORD_LIST_CATEGORIES = ("gender", "race", "religion")


def build_pairs(
    samples: Sequence[tuple[str, str, list[str]]], word_lists: dict[str, list[tuple[str, ...]]], seed: int = 0
) -> list[tuple[str, str, str]]:
    """(record id, sentence, counterfactual) for each sampled sentence with a swappable group term."""
    pairs: list[tuple[str, str, str]] = []
    for k, (rid, text, mentioned) in enumerate(samples):
        cats = [c for c in mentioned if c in word_lists] or [
            c for c in WORD_LIST_CATEGORIES if c in word_lists
        ]
        cfs = counterfactuals(text, cats, word_lists, seed=seed + k)
        if cfs:
            pairs.append((rid, text, cfs[0]))
    return pairs


def summarise(
    differences: Sequence[float], pairs: Sequence[tuple[str, str, str]], model: str
) -> dict[str, Any]:
    raw = np.asarray(differences, dtype=np.float64)
    keep = ~np.isnan(raw)  # a masked-LM scorer gives nan for pairs without a modified token
    d = raw[keep]
    pairs = [p for p, k in zip(pairs, keep.tolist(), strict=True) if k]
    if not len(d):
        return {"model": model, "n_pairs": 0, "n_unscorable": int((~keep).sum())}
    order = np.argsort(d)
    examples = [
        {"id": pairs[i][0], "sentence": pairs[i][1], "counterfactual": pairs[i][2], "difference": float(d[i])}
        for i in dict.fromkeys([*order[:3].tolist(), *order[-3:][::-1].tolist()])
    ]
    hist, edges = np.histogram(d, bins=20)
    return {
        "model": model,
        "n_pairs": len(d),
        "n_unscorable": int((~keep).sum()),
        "score": "mean log-probability per token (vdata eval's CrowS-Pairs scoring for the model's kind)",
        "mean_difference": float(d.mean()),
        "median_difference": float(np.median(d)),
        "share_data_more_likely": float((d > 0).mean()),
        "share_counterfactual_more_likely": float((d < 0).mean()),
        "interpretation": (
            "difference = model score(sentence) - score(CDA counterfactual); a positive share near 1 means the "
            "data agrees with the model's existing preferences (reinforcing), near 0 means it counters them"
        ),
        "histogram": {"counts": hist.tolist(), "edges": edges.tolist()},
        "differences": d.round(4).tolist(),
        "examples": examples,
    }


def make_direction_scorer(
    model_name: str,
    word_lists: dict[str, list[tuple[str, ...]]],
    batch_size: int,
    seed: int = 0,
    loaded: LoadedModel | None = None,
) -> Any:
    """A callable for `Auditor.finish(direction=...)`; loads the model lazily (only if there are pairs),
    or uses `loaded` (a `LoadedModel`) when the caller already has it."""

    def score(samples: Sequence[tuple[str, str, list[str]]]) -> dict[str, Any]:
        pairs = build_pairs(samples, word_lists, seed)
        if not pairs:
            return {"model": model_name, "n_pairs": 0}
        from vdata.lm.models import load_model
        from vdata.lm.scorer import scorer_for

        lm = loaded if loaded is not None else load_model(model_name)
        diffs = scorer_for(lm, batch_size=batch_size).pair_differences([(a, b) for _, a, b in pairs])
        return summarise([float(x) for x in diffs], pairs, model_name)

    return score
