"""Diversity metrics and the bounded-memory sketches they rest on.

* distinct-n: distinct n-grams / total n-grams. Counted exactly (8 bytes per distinct n-gram) up to
  `exact_limit` distinct values, then by a HyperLogLog sketch (~0.8 % standard error, 16 KiB). Both merge
  (set union, register maximum), so shards audited apart give the count of the whole.
* self-BLEU: every sentence of a seeded sample scored with BLEU-4 against all the others as references
  (Zhu et al. 2018, as used by AttrPrompt), averaged. Higher = more repetitive.
* APS: average pairwise cosine similarity of sentence embeddings, overall, within and across categories.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a fixed bijection that spreads integer ids over 64 bits."""
    x = x ^ (x >> _S33)
    x = x * _M1
    x = x ^ (x >> _S33)
    x = x * _M2
    return x ^ (x >> _S33)


def ngram_hashes(ids: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every n-gram of token ids that lies within one sentence.

    `ids` is the concatenation of all sentences' token ids; `starts[i]` is where sentence i begins
    (with a final sentinel = len(ids)). Deterministic: token ids are assigned in order of appearance.
    """
    if len(ids) < n:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = fmix64(ids[: len(ids) - n + 1].astype(np.uint64) + np.uint64(n))
        for k in range(1, n):
            h = fmix64(h ^ (ids[k : len(ids) - n + 1 + k].astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
    # An n-gram is valid if it does not cross into the next sentence.
    sentence_of = np.searchsorted(starts, np.arange(len(h)), side="right") - 1
    end_of_sentence = starts[sentence_of + 1]
    return h[np.arange(len(h)) + n <= end_of_sentence]


class HyperLogLog:
    """Vectorised HyperLogLog (Flajolet et al. 2007) over pre-hashed uint64 values."""

    def __init__(self, p: int = 14) -> None:
        self.p = p
        self.registers = np.zeros(1 << p, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        if not len(hashes):
            return
        with np.errstate(over="ignore"):
            hashes = fmix64(hashes.astype(np.uint64))  # robust to inputs that are not uniform 64-bit values
        idx = (hashes >> np.uint64(64 - self.p)).astype(np.int64)
        rest_bits = 64 - self.p
        # Keep 50 bits so the float conversion below is exact; rank = leading zeros + 1.
        keep = min(rest_bits, 50)
        rest = (hashes & np.uint64((1 << rest_bits) - 1)) >> np.uint64(rest_bits - keep)
        _, exponent = np.frexp(rest.astype(np.float64))
        rank = (keep - exponent + 1).astype(np.uint8)
        np.maximum.at(self.registers, idx, rank)

    def estimate(self) -> float:
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.power(2.0, -self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return m * math.log(m / zeros)  # linear counting for small cardinalities
        return raw

    def merge(self, other: HyperLogLog) -> None:
        """Become the sketch of the union: registers are a function of the set of values added."""
        np.maximum(self.registers, other.registers, out=self.registers)


class DistinctCounter:
    """Number of distinct uint64 values: exact while small, a HyperLogLog once over `exact_limit`."""

    def __init__(self, exact_limit: int = 2_000_000) -> None:
        self.exact_limit = exact_limit
        self._sorted = np.empty(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._hll: HyperLogLog | None = None
        self.total = 0

    @property
    def exact(self) -> bool:
        return self._hll is None

    def add(self, hashes: np.ndarray) -> None:
        self.total += len(hashes)
        if self._hll is not None:
            self._hll.add(hashes)
            return
        self._pending.append(hashes)
        self._pending_n += len(hashes)
        if self._pending_n > max(200_000, len(self._sorted) // 2):
            self._merge()

    def _merge(self) -> None:
        if self._pending:
            self._sorted = np.unique(np.concatenate([self._sorted, *self._pending]))
            self._pending, self._pending_n = [], 0
        if len(self._sorted) > self.exact_limit:
            self._hll = HyperLogLog()
            self._hll.add(self._sorted)
            self._sorted = np.empty(0, dtype=np.uint64)

    def merge(self, other: DistinctCounter) -> None:
        """Add `other`'s values: exact while the union fits in `exact_limit`, else the union's sketch."""
        self.total += other.total
        if other._hll is not None:
            if self._hll is None:
                self._merge()
                self._hll = HyperLogLog()
                self._hll.add(self._sorted)
                self._sorted = np.empty(0, dtype=np.uint64)
            self._hll.merge(other._hll)
            return
        values = np.concatenate([other._sorted, *other._pending])
        if self._hll is not None:
            self._hll.add(values)
            return
        self._pending.append(values)
        self._pending_n += len(values)
        self._merge()

    def count(self) -> int:
        if self._hll is None:
            self._merge()
        if self._hll is not None:
            return round(self._hll.estimate())
        return len(self._sorted)


def normalised_entropy(counts: Sequence[int] | np.ndarray, n_categories: int | None = None) -> float | None:
    """Shannon entropy of a count distribution divided by log(k): 1 = perfectly even, 0 = one group only.

    k is `n_categories` (all groups that could occur, so absent groups lower the score) or len(counts).
    """
    arr = np.asarray([c for c in counts if c > 0], dtype=np.float64)
    k = n_categories if n_categories is not None else len(counts)
    if k <= 1 or arr.sum() == 0:
        return None
    p = arr / arr.sum()
    return max(0.0, float(-(p * np.log(p)).sum() / math.log(k)))


def stable_hash64(text: str, salt: int = 0) -> int:
    """A 64-bit hash that is the same in every process (Python's `hash` of a str is salted per process)."""
    digest = hashlib.blake2b(
        text.encode("utf-8"), digest_size=8, salt=salt.to_bytes(8, "little", signed=True)
    )
    return int.from_bytes(digest.digest(), "little")


class BottomKSample:
    """A seeded uniform sample of fixed size that merges: the `size` items with the smallest priority,
    priority = a seeded hash of each item's key (its place in the input, e.g. "file:line").

    The sample is a function of the set of items offered, so per-shard samples merged give the same sample
    as one pass over all the data, in any order.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._heap: list[tuple[int, str, Any]] = []  # (-priority, key, item): the largest priority on top

    def offer(self, key: str, item: Any) -> None:
        if self.size <= 0:
            return
        entry = (-stable_hash64(key, self.seed), key, item)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def merge(self, other: BottomKSample) -> None:
        for neg_priority, key, item in other._heap:
            entry = (neg_priority, key, item)
            if len(self._heap) < self.size:
                heapq.heappush(self._heap, entry)
            elif entry[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, entry)

    @property
    def items(self) -> list[Any]:
        """The sample by ascending priority: a seeded random order, so any prefix is itself uniform."""
        return [item for _, _, item in sorted(self._heap, key=lambda e: (-e[0], e[1]))]


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def self_bleu(sentences: Sequence[Sequence[str]], max_n: int = 4, epsilon: float = 0.1) -> float | None:
    """Mean BLEU-`max_n` of each tokenised sentence against all the others as references.

    Exact multi-reference BLEU (clipped counts against the best reference, closest reference length for
    the brevity penalty) computed in one pass: for every n-gram the two highest per-sentence counts are
    kept, so "all references but me" is answered without a quadratic loop. Zero matches of an order are
    smoothed with `epsilon` (NLTK's method1); orders longer than the hypothesis are skipped.
    """
    sents = [list(s) for s in sentences if len(s) > 0]
    if len(sents) < 2:
        return None
    per_order: list[list[Counter[tuple[str, ...]]]] = []
    top: list[dict[tuple[str, ...], list[int]]] = []
    for n in range(1, max_n + 1):
        counts = [_ngrams(s, n) for s in sents]
        best: dict[tuple[str, ...], list[int]] = {}
        for i, c in enumerate(counts):
            for g, k in c.items():
                slot = best.get(g)
                if slot is None:
                    best[g] = [k, i, 0]
                elif k > slot[0]:
                    slot[2], slot[0], slot[1] = slot[0], k, i
                elif k > slot[2]:
                    slot[2] = k
        per_order.append(counts)
        top.append(best)
    lengths = Counter(len(s) for s in sents)
    distinct_lengths = sorted(lengths)
    scores: list[float] = []
    for i, hyp in enumerate(sents):
        log_sum, orders = 0.0, 0
        for n in range(1, max_n + 1):
            counts = per_order[n - 1][i]
            total = sum(counts.values())
            if total == 0:
                continue
            best = top[n - 1]
            clipped = 0
            for g, k in counts.items():
                c1, holder, c2 = best[g]
                clipped += min(k, c2 if holder == i else c1)
            log_sum += math.log(clipped / total if clipped else epsilon / total)
            orders += 1
        ref_len = _closest_other_length(len(hyp), distinct_lengths, lengths)
        bp = 1.0 if len(hyp) > ref_len else math.exp(1 - ref_len / len(hyp))
        scores.append(bp * math.exp(log_sum / orders))
    return float(np.mean(scores))


def _closest_other_length(length: int, distinct: list[int], counts: Counter[int]) -> int:
    """Closest reference length (ties: the shorter) among all sentences except one of this length."""
    pos = bisect_left(distinct, length)
    candidates = []
    for j in range(max(0, pos - 1), min(len(distinct), pos + 2)):
        ref = distinct[j]
        if counts[ref] - (1 if ref == length else 0) > 0:
            candidates.append(ref)
    if not candidates:  # every other sentence has a length further away than the neighbours checked
        others = [ln for ln in distinct if counts[ln] - (1 if ln == length else 0) > 0]
        candidates = others
    return min(candidates, key=lambda r: (abs(r - length), r))


def pairwise_cosine(embeddings: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """APS from unit-norm embeddings: overall, per label (within) and between different labels (across).

    Uses sum_{i!=j} e_i.e_j = |sum e|^2 - sum |e_i|^2, so no n x n matrix is formed.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    n = len(e)

    def pair_sum(x: np.ndarray) -> float:
        s = x.sum(axis=0)
        return float(s @ s - (x * x).sum())

    out: dict[str, Any] = {"n": n, "aps": None, "within": {}, "within_mean": None, "across": None}
    if n < 2:
        return out
    total = pair_sum(e)
    out["aps"] = total / (n * (n - 1))
    labels_arr = np.asarray(labels)
    within_sum, within_pairs = 0.0, 0
    for label in sorted(set(labels)):
        sub = e[labels_arr == label]
        if len(sub) >= 2:
            s = pair_sum(sub)
            out["within"][label] = {"aps": s / (len(sub) * (len(sub) - 1)), "n": len(sub)}
            within_sum += s
            within_pairs += len(sub) * (len(sub) - 1)
        else:
            within_pairs += 0
    if out["within"]:
        out["within_mean"] = float(np.mean([v["aps"] for v in out["within"].values()]))
    counts = Counter(labels)
    same_label_pairs = sum(c * (c - 1) for c in counts.values())
    across_pairs = n * (n - 1) - same_label_pairs
    if across_pairs > 0:
        same_label_sum = sum(pair_sum(e[labels_arr == lb]) for lb, c in counts.items() if c >= 2)
        out["across"] = (total - same_label_sum) / across_pairs
    return out


def distinct_n(sentences: Sequence[Sequence[str]], n: int) -> float | None:
    """Exact distinct-n of a (small) list of tokenised sentences."""
    grams = [tuple(s[i : i + n]) for s in sentences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None
