"""The counter-stereotype check, judged by a model: does the record push the model against its own
stereotype?

The record's counterfactual swaps its group term for the counterpart(s) in the same category (CDA word
lists for gender, the category's term lists for the others: `lexicon.py`). With rule
`attribute_given_group` the judge scores log p(attribute | the words before it) with the record's group
and with each counterpart; with `whole_sentence` it scores the sentences' mean token log-probabilities.
The record passes when the counterparts' mean score exceeds its own by more than `margin` nats: the
model associates the attribute less with the record's group than with the others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vdata.core.records import Record
from vdata.generate.verify.checks.form import attribute_in_text
from vdata.generate.verify.lexicon import load_lexicon
from vdata.generate.verify.registry import CheckContext, CheckResult, register_check
from vdata.generate.verify.settings import JudgeRule

NAME = "counter_stereotype"


@dataclass(frozen=True)
class JudgeItem:
    """What the judge scores for one record: its own text and the counterfactual texts, split before the
    attribute for the attribute rule (prefix, attribute word)."""

    own: tuple[str, str]
    swapped: list[tuple[str, str]]


def judge_item(record: Record, rule: JudgeRule, max_counterparts: int) -> JudgeItem | str:
    """The texts to score, or why the record cannot be judged."""
    lexicon = load_lexicon()
    category = record.category or "gender"
    if rule == "whole_sentence":
        swapped = lexicon.counterfactuals(record.text, record.target, category, max_counterparts)
        if not swapped:
            return "no counterpart for the group term"
        return JudgeItem((record.text, ""), [(s, "") for s in swapped])
    word = attribute_in_text(record.text, record.attribute) if record.attribute.strip() else None
    if word is None:
        return "attribute not in the sentence"
    match = re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", record.text, re.IGNORECASE)
    if match is None:
        return "attribute not in the sentence"
    prefix, attribute = record.text[: match.start()].rstrip(), match.group(0)
    swapped = lexicon.counterfactuals(prefix, record.target, category, max_counterparts)
    if not swapped:
        return "no counterpart for the group term before the attribute"
    return JudgeItem((prefix, attribute), [(s, attribute) for s in swapped])


def judge_deltas(items: Sequence[JudgeItem], rule: JudgeRule, ctx: CheckContext) -> list[tuple[float, float]]:
    """(own score, mean counterpart score) per item, all items scored in one batched call."""
    flat = [pair for it in items for pair in (it.own, *it.swapped)]
    if rule == "whole_sentence":
        scores = ctx.judge.sentence_logprobs([text for text, _ in flat])
    else:
        scores = ctx.judge.continuation_logprobs(flat)
    out: list[tuple[float, float]] = []
    offset = 0
    for it in items:
        own, others = scores[offset], scores[offset + 1 : offset + 1 + len(it.swapped)]
        out.append((own, sum(others) / len(others)))
        offset += 1 + len(it.swapped)
    return out


@register_check(
    NAME,
    family="model",
    description="the judge model associates the attribute less with the record's group than with its "
    "counterpart(s) (rule, margin)",
)
def counter_stereotype(records: Sequence[Record], ctx: CheckContext) -> list[CheckResult]:
    settings = ctx.settings
    prepared = [judge_item(r, settings.rule, settings.max_counterparts) for r in records]
    items = [p for p in prepared if isinstance(p, JudgeItem)]
    scores = iter(judge_deltas(items, settings.rule, ctx) if items else [])
    results: list[CheckResult] = []
    for p in prepared:
        if isinstance(p, str):
            results.append(CheckResult(value=None, passed=False, reason=f"not judged: {p}"))
            continue
        own, counterpart = next(scores)
        delta = counterpart - own
        results.append(
            CheckResult(
                value={
                    "rule": settings.rule,
                    "own": round(own, 4),
                    "counterpart": round(counterpart, 4),
                    "delta": round(delta, 4),
                    "margin": settings.margin,
                },
                passed=delta > settings.margin,
                reason="the judge model does not associate the attribute less with the group",
            )
        )
    return results
