"""Batching helpers shared by the causal and masked scorers: length buckets and padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vdata.core.errors import UserError


def check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    return batch_size


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (stable), cut into batches of at most `batch_size`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """(input ids, attention mask) tensors of the sequences right-padded to the longest."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[row, : len(seq)] = 1
    return ids, attention


def pad_id(tokenizer: Any) -> int:
    """The id padding is filled with (masked out by attention, so any real id will do)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def encode_plain(tokenizer: Any, sentences: Sequence[str]) -> list[list[int]]:
    """Token ids without special tokens (bias-bench's GPT-2 `tok.encode` adds none)."""
    return [list(tokenizer.encode(s, add_special_tokens=False)) for s in sentences]
