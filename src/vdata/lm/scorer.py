"""The scorer interface: what every stage asks of a language model's probabilities.

`scorer_for(lm, ...)` returns the scorer of the model's kind: `CausalScorer` (bias-bench's causal
algorithm: first token given a start token, mean token log-probability) or `MaskedScorer` (bias-bench's
masked-LM algorithms). It is the only place besides loading that looks at the model kind; callers use
the methods of `Scorer` and, for what only one kind can do (sentence log-probabilities of a causal LM,
masked-token log-probabilities of a masked LM), the concrete class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from vdata.core.progress import ProgressFactory, no_progress
from vdata.lm.causal import CausalScorer
from vdata.lm.masked import MaskedScorer
from vdata.lm.models import LoadedModel


class Scorer(Protocol):
    """Scores text with one loaded model, `batch_size` sentences (or masked inputs) per forward pass."""

    lm: LoadedModel
    batch_size: int

    def pair_scores(
        self, pairs: Sequence[tuple[str, str]], description: str = ...
    ) -> list[tuple[float, float]]:
        """(score(a), score(b)) per pair with the CrowS-Pairs score of the model's kind (nan: unscorable)."""
        ...

    def pair_differences(self, pairs: Sequence[tuple[str, str]], description: str = ...) -> list[float]:
        """score(a) - score(b) per pair; positive means the model prefers `a`."""
        ...

    def text_perplexity(self, text: str, window: int = 512) -> tuple[float, int]:
        """(perplexity, scored tokens); a UserError for models without left-to-right perplexity."""
        ...

    def provenance(self) -> dict[str, Any]:
        """model_kind, scorer, start_token, start_token_id: what a results file records."""
        ...


def scorer_for(
    lm: LoadedModel,
    *,
    start_token: str | None = None,
    batch_size: int = 64,
    progress: ProgressFactory = no_progress,
) -> Scorer:
    """The scorer of `lm`'s kind. `start_token` conditions a causal LM's first token (default BOS, else
    EOS) and is ignored for masked LMs; a bad one is a UserError here, before any scoring."""
    if lm.kind == "masked":
        return MaskedScorer(lm, batch_size=batch_size, progress=progress)
    return CausalScorer(lm, start_token=start_token, batch_size=batch_size, progress=progress)
