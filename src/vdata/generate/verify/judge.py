"""The judge model's two scores, batched: log p(attribute | the words before it), and a sentence's mean
token log-probability. Both come from `vdata eval`'s causal scorer (`vdata.lm.scorer.scorer_for`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from vdata.core.errors import UserError
from vdata.lm.causal import CausalScorer
from vdata.lm.models import DEFAULT_MODEL, LoadedModel, load_model
from vdata.lm.scorer import scorer_for

SCORE_BATCH = 64


class ModelJudge:
    """Scores continuations and sentences with one causal LM (the model to be debiased, by default)."""

    def __init__(self, lm: LoadedModel, batch_size: int = SCORE_BATCH) -> None:
        scorer = scorer_for(lm, batch_size=batch_size)
        if not isinstance(scorer, CausalScorer):
            raise UserError(
                f"judge model {lm.name!r} is a masked LM; the gate's judge needs a causal LM "
                f"(e.g. the default {DEFAULT_MODEL!r})"
            )
        self.lm = lm
        self.scorer = scorer
        self.name = lm.name

    def continuation_logprobs(self, items: Sequence[tuple[str, str]]) -> list[float]:
        """log p(word | prefix) per (prefix, word): the sum over the word's tokens, each given the
        prefix (an empty prefix: given the model's start token, like the scorer's first token)."""
        encode = self.lm.tokenizer.encode
        token_ids: list[list[int]] = []
        word_lengths: list[int] = []
        for prefix, word in items:
            head = list(encode(prefix, add_special_tokens=False)) if prefix else []
            tail = list(encode((" " if prefix else "") + word, add_special_tokens=False))
            token_ids.append(head + tail)
            word_lengths.append(len(tail))
        per_token = self.scorer.token_logprobs(token_ids=token_ids)
        return [sum(lp[len(lp) - n :]) for lp, n in zip(per_token, word_lengths, strict=True)]

    def sentence_logprobs(self, sentences: Sequence[str]) -> list[float]:
        """Mean token log-probability of each sentence (bias-bench's causal sentence score)."""
        return self.scorer.sentence_logprobs(sentences)


@cache
def load_judge(name: str = DEFAULT_MODEL) -> ModelJudge:
    """The judge for model `name` (alias, Hugging Face id, checkpoint or `vdata debias` output), loaded once
    per process."""
    return ModelJudge(load_model(name))
