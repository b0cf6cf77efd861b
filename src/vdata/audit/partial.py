"""The audit's mergeable state: what one pass over a shard learns, as plain data that merges.

Both engines build one `AuditPartial` per shard (the local engine: one shard, the whole dataset; Ray: one
per file) and merge them in input order, so they write the same report:

* counters (records, hygiene flags, groups, terms, labels, attribute values) add up;
* distinct-n sets merge by union, or by HyperLogLog register maximum once past the exact limit;
* the self-BLEU/APS and direction samples are bottom-k samples under a seeded hash of each row's place
  ("file:line"): the merged sample is the one a single pass would have drawn;
* duplicates are decided after the merge, from each text row's ordinal, content key and MinHash LSH band
  hashes (`resolve_duplicates`): a row is an exact duplicate when an earlier row has its key, a near
  duplicate when an earlier row that is not an exact duplicate shares one of its bands. This is the
  streaming rule of one pass, computed by sorting, so shards can be audited in any order and place.

Counters bounded by a cap (attribute pairings past 200,000 entries, 1,000 attribute values or labels,
100,000 attribute combinations) stay exact below their caps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vdata.audit.groups import AttributeCoverage, GroupStats
from vdata.audit.metrics import BottomKSample, DistinctCounter

# Filter reasons, in priority order (a record that is both malformed and a duplicate counts as malformed).
KEEP, MALFORMED, REFUSAL, OVERLAP, EXACT_DUP, NEAR_DUP = range(6)
REASON_NAMES = {
    MALFORMED: "malformed",
    REFUSAL: "refusals",
    OVERLAP: "benchmark_overlap",
    EXACT_DUP: "exact_duplicates",
    NEAR_DUP: "near_duplicates",
}
HYGIENE_KEYS = (
    "exact_duplicates",
    "near_duplicates",
    "refusals",
    "malformed",
    "benchmark_overlap",
    "other_language",
)
DETAIL_KEYS = ("malformed", "refusals", "benchmark_overlap", "other_language")
MAX_LABELS = 1000


@dataclass
class AuditPartial:
    """One shard's streaming statistics; `merge(other)` appends a later shard (ordinals shift by ours)."""

    groups: GroupStats
    distinct: dict[int, DistinctCounter]
    sample: BottomKSample  # (id, text, label) for self-BLEU and APS
    direction_pool: BottomKSample  # (id, text, categories mentioned) for stereotype direction
    attributes: AttributeCoverage = field(default_factory=AttributeCoverage)
    max_examples: int = 5
    n_records: int = 0
    n_texts: int = 0
    n_tokens: int = 0
    vocab: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    detail: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in DETAIL_KEYS})
    # key -> [(ordinal, example)], the first few flagged rows in input order
    examples: dict[str, list[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: {k: [] for k in HYGIENE_KEYS}
    )
    labels: Counter[str] = field(default_factory=Counter)
    reasons: bytearray = field(default_factory=bytearray)  # per row: why --filter would drop it
    # Per text row, for resolve_duplicates: ordinal, content key, LSH band hashes (rows x bands).
    text_ordinals: list[np.ndarray] = field(default_factory=list)
    text_keys: list[np.ndarray] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)

    def merge(self, other: AuditPartial) -> None:
        offset = self.n_records
        self.groups.merge(other.groups)
        for n, counter in self.distinct.items():
            counter.merge(other.distinct[n])
        self.sample.merge(other.sample)
        self.direction_pool.merge(other.direction_pool)
        self.attributes.merge(other.attributes)
        self.n_records += other.n_records
        self.n_texts += other.n_texts
        self.n_tokens += other.n_tokens
        self.vocab |= other.vocab
        self.counts.update(other.counts)
        for key, counter in other.detail.items():
            self.detail[key].update(counter)
        for key, examples in other.examples.items():
            mine = self.examples[key]
            mine.extend((ordinal + offset, ex) for ordinal, ex in examples)
            mine.sort(key=lambda e: e[0])
            del mine[self.max_examples :]
        for label, n in other.labels.items():
            if label in self.labels or len(self.labels) < MAX_LABELS:
                self.labels[label] += n
        self.reasons += other.reasons
        self.text_ordinals.extend(o + offset for o in other.text_ordinals)
        self.text_keys.extend(other.text_keys)
        self.bands.extend(other.bands)


def later_occurrences(values: np.ndarray, ordinals: np.ndarray) -> np.ndarray:
    """For each row: does a row with a smaller ordinal have the same value? (aligned with the input)"""
    out = np.zeros(len(values), dtype=bool)
    if len(values) < 2:
        return out
    order = np.lexsort((ordinals, values))
    sorted_values = values[order]
    repeated = np.zeros(len(values), dtype=bool)
    repeated[1:] = sorted_values[1:] == sorted_values[:-1]
    out[order] = repeated
    return out


@dataclass
class Duplicates:
    exact: np.ndarray  # ordinals of exact duplicates, ascending
    near: np.ndarray  # ordinals of near duplicates (not counted again as exact), ascending


def resolve_duplicates(partial: AuditPartial) -> Duplicates:
    """Exact and near duplicates by the streaming rule of one pass (see the module docstring)."""
    if not partial.text_keys:
        empty = np.empty(0, dtype=np.int64)
        return Duplicates(empty, empty)
    ordinals = np.concatenate(partial.text_ordinals)
    keys = np.concatenate(partial.text_keys)
    bands = np.concatenate(partial.bands)
    exact = later_occurrences(keys, ordinals)
    candidates = ~exact
    cand_ordinals = ordinals[candidates]
    cand_bands = bands[candidates]
    near = np.zeros(len(cand_ordinals), dtype=bool)
    for j in range(cand_bands.shape[1]):
        near |= later_occurrences(np.ascontiguousarray(cand_bands[:, j]), cand_ordinals)
    return Duplicates(np.sort(ordinals[exact]), np.sort(cand_ordinals[near]))


def apply_duplicates(partial: AuditPartial, dups: Duplicates) -> None:
    """Count the duplicates and mark them in `reasons` (a higher-priority reason is kept)."""
    reasons = np.frombuffer(partial.reasons, dtype=np.uint8)  # a writable view of the bytearray
    for key, code, found in (
        ("exact_duplicates", EXACT_DUP, dups.exact),
        ("near_duplicates", NEAR_DUP, dups.near),
    ):
        partial.counts[key] += len(found)
        reasons[found[reasons[found] == KEEP]] = code


def removal_summary(reasons: bytearray) -> dict[str, int]:
    counts = np.bincount(np.frombuffer(reasons, dtype=np.uint8), minlength=len(REASON_NAMES) + 1)
    return {name: int(counts[code]) for code, name in REASON_NAMES.items()}


def example_of(ordinal: int, item: Any, detail: str = "") -> tuple[int, dict[str, str]]:
    ex = {"id": item.id, "where": item.where}
    if item.text:
        ex["text"] = item.text[:160]
    if detail:
        ex["why"] = detail
    return ordinal, ex
