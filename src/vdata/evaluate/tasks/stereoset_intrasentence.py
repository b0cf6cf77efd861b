"""StereoSet intrasentence as bias-bench scores it: three candidate sentences per context.

Causal LMs: each candidate's mean token log-probability, the three sharing their common prefix.
Masked LMs: bias-bench `_likelihood_score` (the template word's sub-tokens unmasked one at a time).
Loading, aggregation (SS/LMS/ICAT) and the predictions format are in `vdata.evaluate.stereoset`.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.evaluate import stereoset
from vdata.evaluate.definitions import BenchmarkDef
from vdata.evaluate.tasks.base import Scored, TaskType, register_task
from vdata.lm.causal import CausalScorer
from vdata.lm.masked import MaskedItem, MaskedScorer
from vdata.lm.scorer import Scorer


@dataclass(frozen=True)
class StereoSetData:
    split: str
    groups: list[str]  # the domains evaluated
    examples: list[stereoset.Example]  # theirs, the first `limit` per domain
    all_examples: list[stereoset.Example]  # the whole split: predictions files are checked against it


def stereoset_template_word(context: str, sentence: str) -> str:
    """bias-bench: the sentence word at the index of the (last) context word holding BLANK, minus punctuation."""
    word_idx = 0
    for idx, word in enumerate(context.split(" ")):
        if "BLANK" in word:
            word_idx = idx
    words = sentence.split(" ")
    return words[min(word_idx, len(words) - 1)].translate(str.maketrans("", "", string.punctuation))


def stereoset_masked_scores(
    scorer: MaskedScorer, items: Sequence[tuple[str, str]], description: str = "scoring masked inputs"
) -> list[float]:
    """bias-bench `_likelihood_score` for (context, sentence) pairs, all masked inputs batched.

    The template word's sub-tokens are inserted one at a time before a [MASK] placed where BLANK was;
    the score is the arithmetic mean of the probabilities of the true sub-tokens. When a context has two
    BLANKs, both get the insertion and the first [MASK] is read (as the one-at-a-time reference does).
    """
    tok = scorer.lm.tokenizer
    mask_id = scorer.mask_token_id
    masked: list[MaskedItem] = []
    owners: list[int] = []
    for n, (context, sentence) in enumerate(items):
        insertion = tok.encode(stereoset_template_word(context, sentence), add_special_tokens=False)
        for k in range(len(insertion)):
            text = context.replace("BLANK", f"{tok.decode(insertion[:k])}{tok.mask_token}")
            ids = list(tok.encode(text, add_special_tokens=True))
            masked.append((ids, ids.index(mask_id), insertion[k]))
            owners.append(n)
    logps = scorer.token_logprobs(masked, description)
    sums = [0.0] * len(items)
    counts = [0] * len(items)
    for owner, lp in zip(owners, logps, strict=True):
        sums[owner] += math.exp(lp)
        counts[owner] += 1
    return [sums[i] / counts[i] if counts[i] else math.nan for i in range(len(items))]


@singledispatch
def sentence_scores(
    scorer: Scorer, examples: Sequence[stereoset.Example]
) -> tuple[dict[str, float], dict[str, float]]:
    """(scores compared, scores written to predictions) keyed by sentence id, by the scorer's kind."""
    raise UserError(f"StereoSet cannot be scored with a {type(scorer).__name__}")


@sentence_scores.register(MaskedScorer)
def _masked_sentence_scores(
    scorer: MaskedScorer, examples: Sequence[stereoset.Example]
) -> tuple[dict[str, float], dict[str, float]]:
    items = [(ex.context, text) for ex in examples for _, text in ex.ordered()]
    values = stereoset_masked_scores(scorer, items, "stereoset")
    ids = [sid for ex in examples for sid, _ in ex.ordered()]
    scores = dict(zip(ids, values, strict=True))
    return scores, scores


@sentence_scores.register(CausalScorer)
def _causal_sentence_scores(
    scorer: CausalScorer, examples: Sequence[stereoset.Example]
) -> tuple[dict[str, float], dict[str, float]]:
    groups = [[text for _, text in ex.ordered()] for ex in examples]
    logps = scorer.grouped_sentence_logprobs(groups, "stereoset")
    scores = {
        sid: lp
        for ex, g in zip(examples, logps, strict=True)
        for (sid, _), lp in zip(ex.ordered(), g, strict=True)
    }
    # bias-bench writes the geometric-mean token probability; it orders sentences like the log-prob.
    return scores, {sid: math.exp(v) for sid, v in scores.items()}


@register_task
class StereoSetIntrasentence(TaskType[StereoSetData, dict[str, float]]):
    name = "stereoset_intrasentence"

    def load(
        self,
        benchmark: BenchmarkDef,
        files: Mapping[str, Path],
        groups: Sequence[str],
        *,
        split: str,
        limit: int | None,
    ) -> StereoSetData:
        path = next(iter(files.values()))
        return StereoSetData(
            split,
            list(groups),
            stereoset.load_examples(path, groups, limit),
            stereoset.load_examples(path, benchmark.groups),
        )

    def score(self, benchmark: BenchmarkDef, data: StereoSetData, scorer: Scorer) -> Scored[dict[str, float]]:
        scores, written = sentence_scores(scorer, data.examples)
        return Scored(scores, stereoset.predictions_document(data.examples, written))

    def scores_from_predictions(
        self, benchmark: BenchmarkDef, data: StereoSetData, doc: Any, source: Path
    ) -> dict[str, float]:
        return stereoset.scores_from_predictions(doc, str(source), data.all_examples, data.examples)

    def aggregate(
        self,
        benchmark: BenchmarkDef,
        data: StereoSetData,
        scores: dict[str, float],
        *,
        resamples: int,
        seed: int,
    ) -> dict[str, Any]:
        return {
            "split": data.split,
            "intrasentence": stereoset.evaluate(data.examples, scores, data.groups, resamples, seed),
        }
