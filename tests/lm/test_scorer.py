"""The scorer interface: the factory picks the implementation by model kind, packing and batching are
exact bookkeeping, progress goes through the factory the caller passes. Causal numbers against the
bias-bench reference are in tests/evaluate/test_scoring.py."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vdata.core.errors import UserError
from vdata.core.progress import NullTask, ProgressTask
from vdata.lm.batching import check_batch_size, pad_batch
from vdata.lm.causal import CausalScorer
from vdata.lm.masked import MaskedScorer
from vdata.lm.packing import block_attention_mask, common_prefix_len, pack_group, plan_packed_batches
from vdata.lm.scorer import scorer_for


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir: Path) -> Any:
    from vdata.lm.models import load_model

    return load_model(str(tiny_bert_dir))


class RecordingProgress:
    """A ProgressFactory that remembers what it was asked to draw."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, float | None, str]] = []
        self.advanced = 0.0

    @contextlib.contextmanager
    def __call__(
        self, description: str, total: float | None = None, unit: str = ""
    ) -> Iterator[ProgressTask]:
        self.bars.append((description, total, unit))
        outer = self

        class Task(NullTask):
            def advance(self, n: float = 1) -> None:
                outer.advanced += n

        yield Task()


def test_factory_picks_the_masked_scorer_and_ignores_the_start_token(tiny_bert: Any) -> None:
    scorer = scorer_for(tiny_bert, start_token="[CLS]", batch_size=5)
    assert isinstance(scorer, MaskedScorer) and scorer.batch_size == 5
    assert scorer.provenance() == {
        "model_kind": "masked",
        "scorer": MaskedScorer.description,
        "start_token": None,
        "start_token_id": None,
    }


def test_masked_scorer_reports_progress_through_the_factory(tiny_bert: Any) -> None:
    progress = RecordingProgress()
    pairs = [("The man is tall.", "The woman is tall."), ("He is old.", "She is old.")]
    diffs = scorer_for(tiny_bert, batch_size=2, progress=progress).pair_differences(pairs, "crows")
    assert len(diffs) == 2 and not any(math.isnan(d) for d in diffs)
    (description, total, unit) = progress.bars[0]
    assert description == "crows" and unit == "sentences" and progress.advanced == total == 4


def test_masked_scorer_has_no_perplexity(tiny_bert: Any) -> None:
    with pytest.raises(UserError, match="needs a causal LM"):
        scorer_for(tiny_bert).text_perplexity("Some text.")


def test_batch_size_must_be_positive(tiny_bert: Any) -> None:
    assert check_batch_size(1) == 1
    with pytest.raises(UserError, match="--batch-size must be at least 1"):
        scorer_for(tiny_bert, batch_size=0)


@pytest.mark.slow
def test_factory_picks_the_causal_scorer(smollm2: Any) -> None:
    scorer = scorer_for(smollm2, start_token="<|endoftext|>")
    assert isinstance(scorer, CausalScorer)
    prov = scorer.provenance()
    assert prov["model_kind"] == "causal" and (prov["start_token"], prov["start_token_id"]) == (
        "<|endoftext|>",
        0,
    )
    # token_logprobs from token ids equals scoring the text they encode
    ids = smollm2.tokenizer.encode("The nurse is kind.", add_special_tokens=False)
    assert scorer.token_logprobs(token_ids=[ids]) == scorer.token_logprobs(["The nurse is kind."])


def test_pack_group_shares_the_prefix_and_scores_every_later_token() -> None:
    a, b = [5, 6, 7, 8], [5, 6, 9]
    assert common_prefix_len([a, b]) == 2
    g = pack_group([a, b], 10)
    assert g.ids == [5, 6, 7, 8, 9]
    assert g.positions == [0, 1, 2, 3, 2]  # b's continuation restarts right after the prefix
    assert g.segments == [0, 0, 1, 1, 2]
    assert g.first_tokens == [(10, 5), (11, 5)]
    # (row predicting the token, token, sentence): a's 6 is predicted by row 0, b's 9 by row 1 (prefix)
    assert g.scored == [(0, 6, 10), (1, 7, 10), (2, 8, 10), (0, 6, 11), (1, 9, 11)]


def test_plan_packed_batches_never_splits_a_group_and_skips_empty_sentences() -> None:
    encoded = [[1, 2, 3], [1, 2, 4], [], [7], [8, 9, 10, 11], [8, 9]]
    packed, batches = plan_packed_batches(encoded, [3, 1, 2], batch_size=2)
    assert [p.n_sentences for p in packed] == [2, 1, 2]  # the empty sentence is left out
    assert sorted(i for b in batches for i in b) == [0, 1, 2]
    assert all(sum(packed[i].n_sentences for i in b) <= 2 for b in batches)


def test_block_mask_sees_prefix_and_own_continuation_causally() -> None:
    import torch

    g = pack_group([[5, 6, 7], [5, 8]], 0)
    mask = block_attention_mask(torch.tensor([[*g.segments, -1]]), torch.tensor([[*g.positions, 0]]))[0, 0]
    # rows: 5 (prefix), 6, 7 (sentence 0), 8 (sentence 1), padding
    assert mask[3].tolist() == [True, False, False, True, False]  # 8 sees the prefix and itself only
    assert mask[2].tolist() == [True, True, True, False, False]
    assert mask[4, 4] and not mask[4, 1:4].any()  # padding sees itself (never a fully masked row)


def test_pad_batch_masks_the_padding() -> None:
    ids, attention = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and attention.tolist() == [[1, 1, 1], [1, 0, 0]]
