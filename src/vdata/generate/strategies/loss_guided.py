"""`loss_guided` (Han et al. 2024, section 3.3): feed the target model's most and least biased examples back.

Round 0 asks like `targeted`. When a round's requests have all come back, every accepted record not yet
scored is scored with the target model in batches: its bias score is how strongly the model prefers the
record's CDA counterfactual (the stereotypical variant: the group term swapped) over the record itself,

    bias(record) = score(counterfactual) - score(sentence)     (`Scorer.pair_differences`, vdata.lm.scorer)

so a high score marks an anti-stereotypical sentence the model still resists. The next round's prompt
shows the top k (per category) as examples to write more of and the bottom k as ones to avoid. Records
with no counterfactual (no word-list term in them) cannot be scored and are not shown. The final round
keeps asking until `count` records are accepted. Scores are appended to ``<out>.loss_guided.jsonl``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vdata.core.records import Record
from vdata.generate.strategies.base import GenRequest, RunState, category_words, register
from vdata.generate.strategies.targeted import Targeted

if TYPE_CHECKING:  # the model API is imported when the strategy runs, not when it is registered
    from vdata.lm.models import LoadedModel


class LossGuidedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_model: str = Field(
        "smollm2-135m",
        description="Model to debias later: scores candidates (alias, HF id/path, vdata debias dir).",
    )
    rounds: int = Field(
        3, ge=1, le=100, description="Generation rounds; the prompt is updated between rounds."
    )
    k: int = Field(3, ge=1, le=20, description="Most and least biased examples shown per category.")
    requests_per_round: int | None = Field(
        None, ge=1, description="Requests per round before the last (default: count / rounds / per_request)."
    )
    n_terms: int = Field(40, ge=3, le=500, description="Terms asked for in the term stage.")
    terms_per_request: int = Field(3, ge=1, le=100, description="Terms named in each sentence request.")
    word_lists: str | None = Field(None, description="CDA word lists JSON (default: bias-bench's).")
    batch_size: int = Field(32, ge=1, le=4096, description="Sentences per scoring forward pass.")


def bias_scores(
    lm: LoadedModel, records: list[Record], word_lists: dict[str, Any], seed: int = 0, batch_size: int = 32
) -> dict[str, float]:
    """Record id -> score(counterfactual) - score(record), batched with `vdata eval`'s scorer
    (`Scorer.pair_differences`: the CrowS-Pairs scoring of the model's kind); records without a swap (or
    a nan score) are left out."""
    from vdata.core.cda import counterfactuals
    from vdata.lm.scorer import scorer_for

    pairs: list[tuple[str, str]] = []
    ids: list[str] = []
    for rec in records:
        cats = [c for c in rec.category.split("+") if c]
        swapped = counterfactuals(rec.text, cats, word_lists, seed=seed)
        if swapped:
            pairs.append((swapped[0], rec.text))
            ids.append(rec.id)
    if not pairs:
        return {}
    diffs = scorer_for(lm, batch_size=batch_size).pair_differences(pairs)
    return {i: d for i, d in zip(ids, diffs, strict=True) if not math.isnan(d)}


def pick_examples(scored: list[tuple[float, Record]], k: int) -> tuple[list[Record], list[Record]]:
    """Top k (most biased, highest score) and bottom k (least biased), disjoint; ties broken by id."""
    ranked = sorted(scored, key=lambda x: (-x[0], x[1].id))
    top = [r for _, r in ranked[:k]]
    rest = ranked[len(top) :]
    bottom = [r for _, r in rest[::-1][:k]]
    return top, bottom


def example_lines(records: list[Record]) -> str:
    return "\n".join(f"{r.text} | {r.target} | {r.attribute}" for r in records)


@register
class LossGuided(Targeted):
    name: ClassVar[str] = "loss_guided"
    Options: ClassVar[type[BaseModel]] = LossGuidedOptions  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.round = 0
        self.issued_in_round = 0
        self.round_quota: int | None = None  # requests this round may issue (grows when replies are unusable)
        self.accepted_at_round_start = 0
        self.scores: dict[str, float] = {}
        self.examples: dict[str, tuple[list[Record], list[Record]]] = {}
        self._lm: Any = None
        self._word_lists: dict[str, Any] | None = None

    # -- scoring ----------------------------------------------------------------------------------
    def target(self) -> Any:
        if self._lm is None:
            from vdata.lm.models import load_model

            self._lm = load_model(self.settings.target_model)
            self._lm.model.eval()
        return self._lm

    def word_lists(self) -> dict[str, Any]:
        if self._word_lists is None:
            from vdata.core.cda import load_word_lists

            self._word_lists = load_word_lists(path=self.settings.word_lists)
        return self._word_lists

    def score_new(self, accepted: list[Record]) -> None:
        new = [r for r in accepted if r.id not in self.scores]
        if not new:
            return
        got = bias_scores(
            self.target(), new, self.word_lists(), seed=self.options.seed, batch_size=self.settings.batch_size
        )
        for rec in new:  # unscorable records are remembered as NaN so they are not retried
            self.scores[rec.id] = got.get(rec.id, math.nan)
        if self.out_path is not None:
            side = Path(f"{self.out_path}.loss_guided.jsonl")
            with side.open("a", encoding="utf-8") as f:
                for rec in new:
                    if rec.id in got:
                        f.write(json.dumps({"id": rec.id, "round": self.round, "bias": got[rec.id]}) + "\n")

    def update_examples(self, accepted: list[Record]) -> None:
        self.score_new(accepted)
        by_category: dict[str, list[tuple[float, Record]]] = {}
        for rec in accepted:
            score = self.scores.get(rec.id, math.nan)
            if not math.isnan(score):
                by_category.setdefault(rec.category, []).append((score, rec))
        self.examples = {c: pick_examples(v, self.settings.k) for c, v in by_category.items()}

    # -- planning ---------------------------------------------------------------------------------
    def per_round(self, count: int) -> int:
        if self.settings.requests_per_round:
            return self.settings.requests_per_round
        per_request = self.options.per_request or 3
        return max(1, math.ceil(count / self.settings.rounds / per_request))

    def next_requests(self, state: RunState, n: int) -> list[GenRequest]:
        # A round ends when its requests are all issued and answered. That is checked here rather than
        # via `state.round`, which only advances when [] was returned while replies were still pending.
        # A round whose replies gave fewer than k usable records is extended by another quota of requests
        # (at most 4 quotas), so small models' junk replies do not leave the next round without examples.
        quota = self.per_round(state.count)
        if self.round_quota is None:
            self.round_quota = quota
        last_round = self.round >= self.settings.rounds - 1
        all_back = state.in_flight == 0 and state.completed >= state.issued
        if not last_round and all_back and self.issued_in_round >= self.round_quota:
            new_records = len(state.accepted) - self.accepted_at_round_start
            if new_records >= self.settings.k or self.round_quota >= 4 * quota:
                self.round += 1
                self.issued_in_round = 0
                self.round_quota = quota
                self.accepted_at_round_start = len(state.accepted)
                self.update_examples(list(state.accepted))
                last_round = self.round >= self.settings.rounds - 1
            else:
                self.round_quota += quota
        room = n if last_round else min(n, self.round_quota - self.issued_in_round)
        out = []
        for _ in range(max(0, room)):
            out.append(self.build_request(self.next_index))
            self.next_index += 1
        self.issued_in_round += len(out)
        return out

    def build_request(self, index: int) -> GenRequest:
        category = self.category_for(index)
        guided = self.examples.get(category)
        if not guided or not guided[0]:
            request = super().build_request(index)
            request.context["round"] = self.round
            return request
        top, bottom = guided
        pool = self.terms[category]
        chosen = self.rng(index).sample(pool, min(self.settings.terms_per_request, len(pool)))
        messages = self.prompt(
            "guided",
            category=category,
            category_words=category_words(category),
            n=self.options.per_request,
            terms=", ".join(chosen),
            hard_examples=example_lines(top),
            easy_examples=example_lines(bottom) or "(none yet)",
        )
        context = {
            "terms": chosen,
            "round": self.round,
            "hard": [r.id for r in top],
            "easy": [r.id for r in bottom],
        }
        return GenRequest(messages, index, category, stage="guided", context=context)
