"""Token ids and loss labels for each objective and mitigation: pure functions, tested position by position.

Positions labelled ``IGNORE`` (-100) contribute nothing to the loss. Labels are aligned with the inputs
as Hugging Face models expect: for a causal LM the label at position i is the token at position i, and
the loss compares it with the prediction made at position i-1.

  * ``sentence`` objective, causal LM: every token of the text (not the BOS token, not a marker tag).
  * ``sentence`` objective, masked LM: a seeded 15% of the text tokens (at least one) are chosen; of those
    80% become the mask token, 10% a random token, 10% stay (BERT's recipe); only chosen positions are labelled.
  * ``attribute`` objective, causal LM: only the tokens of the attribute word, predicted from the prefix.
  * ``attribute`` objective, masked LM: the attribute word's tokens are all replaced by the mask token
    and only they are labelled.
  * ``token`` mitigation (synthetic examples): the text is prefixed with ``SYNTHETIC_TAG``; the tag is never labelled.
  * ``mask`` mitigation (synthetic examples): tokens overlapping a group-identity term are never labelled
    (and, for the masked-LM sentence objective, never chosen for masking).

What differs between causal and masked LMs is decided once per run: `training_kind(lm.kind)` gives the
`TrainingKind` (`CAUSAL` or `MASKED`) whose methods build the sequence and labels and align the predictions.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from vdata.core.errors import UserError
from vdata.debias.data import Example, word_spans
from vdata.debias.settings import Mitigation, Objective

IGNORE = -100
SYNTHETIC_TAG = "[synthetic]"
MLM_PROBABILITY = 0.15


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    synthetic: bool


class TrainingKind(ABC):
    """What differs between training a causal and a masked LM: the input sequence, which positions carry
    labels, and how the model's predictions line up with the labels. Chosen once per run (`training_kind`)."""

    name: ClassVar[str]

    @abstractmethod
    def check_tokenizer(self, tokenizer: Any, model: str) -> None:
        """Raise a UserError when this kind of LM cannot be trained with `tokenizer`."""

    @abstractmethod
    def sequence(
        self, ids: list[int], offsets: list[tuple[int, int]], is_text: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
        """The tokenizer's ids, offsets and text flags as the model is trained on them."""

    @abstractmethod
    def attribute_labels(
        self, ids: list[int], chosen: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[int]]:
        """(inputs, labels) training the `chosen` positions (the attribute word's tokens)."""

    @abstractmethod
    def sentence_labels(
        self, ids: list[int], trainable: list[bool], tokenizer: Any, rng: random.Random
    ) -> tuple[list[int], list[int]]:
        """(inputs, labels) of the `sentence` objective over the `trainable` positions."""

    @abstractmethod
    def align(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        """(predictions, labels) position by position, from (batch, length, vocab) logits and (batch, length)
        labels; also applied to the frozen base model's logits (the `loss` mitigation)."""


class CausalTraining(TrainingKind):
    """A causal LM: a start token is prepended when the tokenizer adds none; the label at position i is
    predicted at position i-1."""

    name = "causal"

    def check_tokenizer(self, tokenizer: Any, model: str) -> None:
        return None  # any tokenizer: a missing start token is simply not prepended

    def sequence(
        self, ids: list[int], offsets: list[tuple[int, int]], is_text: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
        start = start_token_id(tokenizer)
        if start is not None and (not ids or ids[0] != start):
            return [start, *ids], [(0, 0), *offsets], [False, *is_text]
        return ids, offsets, is_text

    def attribute_labels(
        self, ids: list[int], chosen: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[int]]:
        return ids, [i if c else IGNORE for i, c in zip(ids, chosen, strict=True)]

    def sentence_labels(
        self, ids: list[int], trainable: list[bool], tokenizer: Any, rng: random.Random
    ) -> tuple[list[int], list[int]]:
        return ids, [i if t else IGNORE for i, t in zip(ids, trainable, strict=True)]

    def align(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        return logits[:, :-1], labels[:, 1:]


class MaskedTraining(TrainingKind):
    """A masked LM: labelled positions are (mostly) replaced by the mask token and predicted in place."""

    name = "masked"

    def check_tokenizer(self, tokenizer: Any, model: str) -> None:
        if tokenizer.mask_token_id is None:
            raise UserError(f"{model}: a masked LM whose tokenizer has no mask token cannot be trained")

    def sequence(
        self, ids: list[int], offsets: list[tuple[int, int]], is_text: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
        return ids, offsets, is_text

    def attribute_labels(
        self, ids: list[int], chosen: list[bool], tokenizer: Any
    ) -> tuple[list[int], list[int]]:
        masked = [tokenizer.mask_token_id if c else i for i, c in zip(ids, chosen, strict=True)]
        return masked, [i if c else IGNORE for i, c in zip(ids, chosen, strict=True)]

    def sentence_labels(
        self, ids: list[int], trainable: list[bool], tokenizer: Any, rng: random.Random
    ) -> tuple[list[int], list[int]]:
        """BERT's recipe over the trainable positions: a seeded 15% (at least one) are chosen; of those 80%
        become the mask token, 10% a random token, 10% stay."""
        positions = [p for p, c in enumerate(trainable) if c]
        chosen = [p for p in positions if rng.random() < MLM_PROBABILITY] or [rng.choice(positions)]
        inputs, labels = list(ids), [IGNORE] * len(ids)
        for p in chosen:
            labels[p] = ids[p]
            roll = rng.random()
            if roll < 0.8:
                inputs[p] = tokenizer.mask_token_id
            elif roll < 0.9:
                inputs[p] = rng.randrange(len(tokenizer))
        return inputs, labels

    def align(self, logits: Any, labels: Any) -> tuple[Any, Any]:
        return logits, labels


CAUSAL = CausalTraining()
MASKED = MaskedTraining()
TRAINING_KINDS: dict[str, TrainingKind] = {kind.name: kind for kind in (CAUSAL, MASKED)}


def training_kind(name: str) -> TrainingKind:
    """The training behaviour of a model kind as `vdata.lm.models.load_model` reports it."""
    if name not in TRAINING_KINDS:
        raise UserError(f"cannot train a {name!r} model; vdata debias trains {', '.join(TRAINING_KINDS)} LMs")
    return TRAINING_KINDS[name]


def _overlaps(offset: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    start, end = offset
    return end > start and any(start < e and end > s for s, e in spans)


def start_token_id(tokenizer: Any) -> int | None:
    """The token a causal LM sequence starts with when the tokenizer does not add one itself."""
    if tokenizer.bos_token_id is not None:
        return int(tokenizer.bos_token_id)
    return None if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id)


def encode(
    example: Example,
    tokenizer: Any,
    kind: TrainingKind,
    objective: Objective,
    mitigations: Sequence[Mitigation] = (),
    group_terms: Sequence[str] = (),
    max_length: int = 64,
    rng: random.Random | None = None,
) -> Encoded | None:
    """Ids and labels of one example, or None when nothing in it can be labelled (e.g. no attribute word
    for the `attribute` objective)."""
    text = example.text
    shift = 0
    tagged = "token" in mitigations and example.synthetic
    if tagged:
        text = f"{SYNTHETIC_TAG} {text}"
        shift = len(SYNTHETIC_TAG) + 1
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True, truncation=False)
    ids: list[int] = list(enc["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
    special = set(tokenizer.all_special_ids)
    is_text = [not (i in special and o == (0, 0)) and o[1] > o[0] for i, o in zip(ids, offsets, strict=True)]
    ids, offsets, is_text = kind.sequence(ids, offsets, is_text, tokenizer)
    ids, offsets, is_text = ids[:max_length], offsets[:max_length], is_text[:max_length]
    # A tag token ends inside the tag; the first text token may start at the separating space.
    trainable = [
        t and not (tagged and o[1] <= len(SYNTHETIC_TAG)) for t, o in zip(is_text, offsets, strict=True)
    ]
    if "mask" in mitigations and example.synthetic:
        terms = [*group_terms, example.target] if example.target else list(group_terms)
        groups = [(s + shift, e + shift) for s, e in word_spans(example.text, terms)]
        trainable = [t and not _overlaps(o, groups) for t, o in zip(trainable, offsets, strict=True)]

    if objective == "attribute":
        span = example.attribute_span()
        if span is None:
            return None
        attr = [(span[0] + shift, span[1] + shift)]
        chosen = [t and _overlaps(o, attr) for t, o in zip(trainable, offsets, strict=True)]
        if not any(chosen):
            return None
        inputs, labels = kind.attribute_labels(ids, chosen, tokenizer)
        return Encoded(inputs, labels, example.synthetic)

    if not any(trainable):
        return None
    inputs, labels = kind.sentence_labels(ids, trainable, tokenizer, rng or random.Random(0))
    return Encoded(inputs, labels, example.synthetic)


def pad_batch(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding), synthetic (bool per row)."""
    import torch

    width = max(len(x.input_ids) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    for row, x in enumerate(items):
        n = len(x.input_ids)
        ids[row, :n] = torch.tensor(x.input_ids)
        labels[row, :n] = torch.tensor(x.labels)
        attention[row, :n] = 1
    synthetic = torch.tensor([x.synthetic for x in items], dtype=torch.bool)
    return {"input_ids": ids, "attention_mask": attention, "labels": labels, "synthetic": synthetic}
