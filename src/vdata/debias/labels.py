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
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vdata.debias.data import Example, word_spans

IGNORE = -100
SYNTHETIC_TAG = "[synthetic]"
MLM_PROBABILITY = 0.15
Objective = Literal["sentence", "attribute"]
Kind = Literal["causal", "masked"]
MITIGATIONS = ("token", "mask", "loss")


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    synthetic: bool


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
    kind: Kind,
    objective: Objective,
    mitigations: Sequence[str] = (),
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
    if kind == "causal":
        start = start_token_id(tokenizer)
        if start is not None and (not ids or ids[0] != start):
            ids, offsets, is_text = [start, *ids], [(0, 0), *offsets], [False, *is_text]
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
        if kind == "causal":
            labels = [i if c else IGNORE for i, c in zip(ids, chosen, strict=True)]
            return Encoded(ids, labels, example.synthetic)
        masked = [tokenizer.mask_token_id if c else i for i, c in zip(ids, chosen, strict=True)]
        labels = [i if c else IGNORE for i, c in zip(ids, chosen, strict=True)]
        return Encoded(masked, labels, example.synthetic)

    if not any(trainable):
        return None
    if kind == "causal":
        return Encoded(
            ids, [i if t else IGNORE for i, t in zip(ids, trainable, strict=True)], example.synthetic
        )
    return _mlm_mask(ids, trainable, tokenizer, rng or random.Random(0), example.synthetic)


def _mlm_mask(
    ids: list[int], candidates: list[bool], tokenizer: Any, rng: random.Random, synthetic: bool
) -> Encoded:
    positions = [p for p, c in enumerate(candidates) if c]
    chosen = [p for p in positions if rng.random() < MLM_PROBABILITY] or [rng.choice(positions)]
    inputs, labels = list(ids), [IGNORE] * len(ids)
    for p in chosen:
        labels[p] = ids[p]
        roll = rng.random()
        if roll < 0.8:
            inputs[p] = tokenizer.mask_token_id
        elif roll < 0.9:
            inputs[p] = rng.randrange(len(tokenizer))
    return Encoded(inputs, labels, synthetic)


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
