"""Sentence log-likelihoods the way lm-evaluation-harness computes them (`HFLM.loglikelihood`).

vdata's own causal scorer is bias-bench's (`vdata.lm.causal`): mean token log-probability, the first token
conditioned on the start token alone and the rest on the sentence *without* it. lm-evaluation-harness
scores a request with an empty context differently:

* the sentence is encoded without special tokens and scored in **one** pass after the prefix token
  (`HFLM.prefix_token_id`: the tokenizer's BOS, else EOS); every token is conditioned on the prefix token
  and all earlier tokens. If the sentence's first token already *is* the prefix token, that token becomes
  the context and is not scored (`TemplateLM.loglikelihood`);
* the sentence's log-likelihood is the **sum** of its token log-probabilities (not the mean).

`LmEvalScorer.pair_scores` gives (ll(more), ll(less)) per pair, so any paired-preference benchmark can be
scored under this protocol (`vdata eval --crows-protocol lm-eval`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from vdata.core.errors import UserError
from vdata.core.progress import ProgressFactory, no_progress
from vdata.lm.causal import CausalScorer, resolve_start_token
from vdata.lm.models import LoadedModel

PROTOCOL = "lm-eval"
LM_EVAL_VERSION = "0.4.13"  # the lm-evaluation-harness release this was verified against


def lm_eval_token_lists(tokenizer: Any, sentence: str, prefix_id: int) -> tuple[list[int], list[int]]:
    """(context, continuation) token ids for an empty-context request, as lm-eval's
    `TemplateLM.loglikelihood` builds them: context = the prefix token, unless the sentence already
    starts with it, in which case that first token is the context."""
    tokens = list(tokenizer.encode(sentence, add_special_tokens=False))
    context, continuation = ([prefix_id], tokens) if tokens[:1] != [prefix_id] else (tokens[:1], tokens[1:])
    if not continuation:
        # lm-eval asserts here; say which sentence instead.
        raise UserError(
            f"sentence {sentence!r} has no token to score under the lm-eval protocol; remove that pair"
        )
    return context, continuation


class LmEvalScorer:
    """Summed log-likelihoods after the prefix token, in one pass (lm-evaluation-harness's protocol)."""

    description: ClassVar[str] = (
        f"lm-evaluation-harness {LM_EVAL_VERSION} loglikelihood (prefix + sentence, sum)"
    )

    def __init__(
        self,
        lm: LoadedModel,
        *,
        prefix_token: str | None = None,
        batch_size: int = 64,
        progress: ProgressFactory = no_progress,
    ) -> None:
        if lm.kind != "causal":
            raise UserError(f"{lm.name} is a {lm.kind} LM; the lm-eval protocol scores causal LMs only")
        self.lm = lm
        self.prefix = resolve_start_token(lm.tokenizer, prefix_token)
        self._causal = CausalScorer(
            lm, start_token=self.prefix.text, batch_size=batch_size, progress=progress
        )

    def sentence_loglikelihoods(
        self, sentences: Sequence[str], description: str = "scoring sentences (lm-eval protocol)"
    ) -> list[float]:
        """lm-eval's log-likelihood of each sentence: sum of log p(token | prefix token, earlier tokens)."""
        requests = [lm_eval_token_lists(self.lm.tokenizer, s, self.prefix.id) for s in sentences]
        # The causal scorer conditions token i >= 1 of a token list on tokens 0..i-1 in one pass: exactly
        # lm-eval's (context + continuation)[:-1] forward. The context's own values are dropped.
        per_token = self._causal.token_logprobs(
            token_ids=[context + continuation for context, continuation in requests], description=description
        )
        return [
            math.fsum(values[len(context) :])
            for values, (context, _) in zip(per_token, requests, strict=True)
        ]

    def pair_scores(
        self, pairs: Sequence[tuple[str, str]], description: str = "scoring pairs (lm-eval protocol)"
    ) -> list[tuple[float, float]]:
        flat = self.sentence_loglikelihoods([s for pair in pairs for s in pair], description)
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(len(pairs))]

    def provenance(self) -> dict[str, Any]:
        return {
            "crows_protocol": PROTOCOL,
            "pair_scorer": self.description,
            "prefix_token": self.prefix.text,
            "prefix_token_id": self.prefix.id,
        }
