"""Masked-LM scoring: batched masked-token log-probabilities and bias-bench's CrowS-Pairs masked score.

`MaskedScorer.token_logprobs` scores a batch of (input ids, masked position, original token) triples;
the CrowS-Pairs algorithm (`pair_scores`) and StereoSet's (in `vdata.evaluate`) build those triples
exactly as bias-bench does and batch them all.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from vdata.core.errors import UserError
from vdata.core.progress import ProgressFactory, no_progress
from vdata.lm.batching import check_batch_size, length_buckets, pad_batch, pad_id
from vdata.lm.models import LoadedModel

MaskedItem = tuple[Sequence[int], int, int]
"""(input ids with the mask token at `position`, position, original token id)."""


def modified_positions(ids1: Sequence[int], ids2: Sequence[int]) -> tuple[list[int], list[int]]:
    """bias-bench CrowS `_get_span(..., "diff")`: positions inside non-"equal" difflib opcodes, per side."""
    matcher = difflib.SequenceMatcher(None, [str(x) for x in ids1], [str(x) for x in ids2])
    side1: list[int] = []
    side2: list[int] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        side1.extend(range(i1, i2))
        side2.extend(range(j1, j2))
    return side1, side2


class MaskedScorer:
    """bias-bench's masked-LM scorers for one masked LM; get one from `vdata.lm.scorer.scorer_for`."""

    description: ClassVar[str] = "bias-bench masked (StereoSet template word, CrowS modified tokens)"

    def __init__(
        self, lm: LoadedModel, *, batch_size: int = 64, progress: ProgressFactory = no_progress
    ) -> None:
        self.lm = lm
        self.batch_size = check_batch_size(batch_size)
        self.progress = progress

    def provenance(self) -> dict[str, Any]:
        return {
            "model_kind": self.lm.kind,
            "scorer": self.description,
            "start_token": None,
            "start_token_id": None,
        }

    @property
    def mask_token_id(self) -> int:
        tid = self.lm.tokenizer.mask_token_id
        if tid is None:
            raise UserError(f"{self.lm.name} has no [MASK] token; masked scoring needs a masked LM tokenizer")
        return int(tid)

    def token_logprobs(
        self, items: Sequence[MaskedItem], description: str = "scoring masked inputs"
    ) -> list[float]:
        """log p(original token) at the masked position of each item, batched by length."""
        import torch

        pad = pad_id(self.lm.tokenizer)
        out = [0.0] * len(items)
        with self.progress(description, len(items), "sentences") as task, torch.inference_mode():
            for idx in length_buckets([len(it[0]) for it in items], self.batch_size):
                ids, attention = pad_batch([items[i][0] for i in idx], pad)
                rows = torch.arange(len(idx))
                positions = torch.tensor([items[i][1] for i in idx])
                targets = torch.tensor([items[i][2] for i in idx])
                logits = (
                    self.lm.model(input_ids=ids, attention_mask=attention).logits[rows, positions].float()
                )
                values = torch.log_softmax(logits, -1)[rows, targets].tolist()
                for i, v in zip(idx, values, strict=True):
                    out[i] = float(v)
                task.advance(len(idx))
        return out

    def pair_scores(
        self, pairs: Sequence[tuple[str, str]], description: str = "scoring masked inputs"
    ) -> list[tuple[float, float]]:
        """bias-bench CrowS BERT scores: mean log-prob of the modified tokens, each masked alone, rounded to
        3 decimals. Pairs where either side has no modified token (pure insertion/deletion) are (nan, nan)."""
        tok = self.lm.tokenizer
        mask_id = self.mask_token_id
        items: list[MaskedItem] = []
        spans: list[tuple[tuple[int, int], tuple[int, int]] | None] = []
        for a, b in pairs:
            ids_a = list(tok.encode(a, add_special_tokens=True))
            ids_b = list(tok.encode(b, add_special_tokens=True))
            pos_a, pos_b = modified_positions(ids_a, ids_b)
            if not pos_a or not pos_b:
                spans.append(None)
                continue
            ranges = []
            for ids, positions in ((ids_a, pos_a), (ids_b, pos_b)):
                start = len(items)
                for p in positions:
                    masked = list(ids)
                    masked[p] = mask_id
                    items.append((masked, p, ids[p]))
                ranges.append((start, len(items)))
            spans.append((ranges[0], ranges[1]))
        logps = self.token_logprobs(items, description)
        out: list[tuple[float, float]] = []
        for span in spans:
            if span is None:
                out.append((math.nan, math.nan))
                continue
            (a0, a1), (b0, b1) = span
            out.append((round(sum(logps[a0:a1]) / (a1 - a0), 3), round(sum(logps[b0:b1]) / (b1 - b0), 3)))
        return out

    def pair_differences(
        self, pairs: Sequence[tuple[str, str]], description: str = "scoring masked inputs"
    ) -> list[float]:
        """score(a) - score(b) per pair (nan where bias-bench skips the pair); positive: prefers `a`."""
        return [a - b for a, b in self.pair_scores(pairs, description)]

    def text_perplexity(self, text: str, window: int = 512) -> tuple[float, int]:
        raise UserError("--ppl-text needs a causal LM; perplexity is not defined for a masked LM")
