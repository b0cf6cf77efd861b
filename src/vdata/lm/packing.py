"""Packing groups of sentences that share a token prefix, for the causal scorer.

A causal model's output at a position depends only on the tokens up to it, so the rows of a prefix
shared by several sentences are the same for each of them: the prefix is laid out once, each sentence's
continuation follows it with its own position ids, and a block attention mask lets a continuation see
the prefix and itself only. Exact by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(q) for q in seqs)
    for i in range(n):
        if any(q[i] != seqs[0][i] for q in seqs[1:]):
            return i
    return n


class PackedGroup(NamedTuple):
    """Sentences sharing a token prefix, laid out as: shared prefix, then each sentence's continuation."""

    ids: list[int]
    positions: list[int]  # position ids: a continuation restarts right after the prefix
    segments: list[int]  # 0 = shared prefix, k + 1 = continuation of the group's sentence k
    scored: list[tuple[int, int, int]]  # (packed row predicting the token, token id, sentence index)
    first_tokens: list[tuple[int, int]]  # (sentence index, first token id): scored after the start token
    n_sentences: int


def pack_group(token_lists: Sequence[Sequence[int]], first_index: int | Sequence[int]) -> PackedGroup:
    """Pack one group; `first_index` is the global index of its first sentence (or every sentence's index)."""
    p = common_prefix_len(token_lists)
    ids, positions, segments = list(token_lists[0][:p]), list(range(p)), [0] * p
    scored: list[tuple[int, int, int]] = []
    first_tokens: list[tuple[int, int]] = []
    indices = (
        range(first_index, first_index + len(token_lists)) if isinstance(first_index, int) else first_index
    )
    for k, (toks, sentence) in enumerate(zip(token_lists, indices, strict=True)):
        first_tokens.append((sentence, toks[0]))
        offset = len(ids)
        suffix = list(toks[p:])
        ids += suffix
        positions += list(range(p, p + len(suffix)))
        segments += [k + 1] * len(suffix)
        for j in range(1, len(toks)):
            row = j - 1 if j - 1 < p else offset + (j - 1 - p)
            scored.append((row, toks[j], sentence))
    return PackedGroup(ids, positions, segments, scored, first_tokens, len(token_lists))


def block_attention_mask(segments: Any, positions: Any) -> Any:
    """(B, 1, L, L) bool mask: a row sees the shared prefix and its own continuation, causally.

    Padding (segment -1) rows see only themselves so that no row is fully masked (which yields NaN).
    """
    import torch

    seg_q, seg_k = segments[:, :, None], segments[:, None, :]
    pos_q, pos_k = positions[:, :, None], positions[:, None, :]
    mask = ((seg_k == 0) | (seg_k == seg_q)) & (pos_k <= pos_q) & (seg_k >= 0)
    eye = torch.eye(segments.shape[1], dtype=torch.bool)[None]
    return (mask | (eye & (seg_q < 0)))[:, None]


def plan_packed_batches(
    encoded: Sequence[Sequence[int]], group_sizes: Sequence[int], batch_size: int
) -> tuple[list[PackedGroup], list[list[int]]]:
    """Pack each group of consecutive token lists, then cut the packs, sorted by length, into batches
    of at most `batch_size` sentences (a pack is never split). Returns (packs, batches of pack indices)."""
    packed: list[PackedGroup] = []
    offset = 0
    for size in group_sizes:
        # Sentences without tokens score nan; the rest of the group is packed.
        kept = [i for i in range(offset, offset + size) if encoded[i]]
        if kept:
            packed.append(pack_group([encoded[i] for i in kept], kept))
        offset += size
    order = sorted(range(len(packed)), key=lambda i: len(packed[i].ids))
    batches: list[list[int]] = []
    load = 0
    for i in order:
        if not batches or load + packed[i].n_sentences > batch_size:
            batches.append([])
            load = 0
        batches[-1].append(i)
        load += packed[i].n_sentences
    return packed, batches
