"""Diversity metrics on inputs with known answers, and the sketches against exact counts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from vdata.audit.metrics import (
    BottomKSample,
    DistinctCounter,
    HyperLogLog,
    distinct_n,
    ngram_hashes,
    normalised_entropy,
    pairwise_cosine,
    self_bleu,
)


def _ids(sentences: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    ids, starts = [], [0]
    for s in sentences:
        ids += [vocab.setdefault(t, len(vocab)) for t in s]
        starts.append(len(ids))
    return np.asarray(ids, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def test_ngram_hashes_count_only_ngrams_inside_one_sentence() -> None:
    sents = [["a", "b", "c"], ["a", "b"], ["b", "c", "a", "b"]]
    ids, starts = _ids(sents)
    bigrams = ngram_hashes(ids, starts, 2)
    # a-b, b-c | a-b | b-c, c-a, a-b  -> 6 bigrams, 3 distinct; none spans "c" | "a" across sentences
    assert len(bigrams) == 6
    assert len(set(bigrams.tolist())) == 3
    assert len(ngram_hashes(ids, starts, 3)) == 3  # abc, bca, cab
    assert len(set(ngram_hashes(ids, starts, 3).tolist())) == 3


def test_distinct_counter_is_exact_then_sketched() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, size=300_000, dtype=np.int64).astype(np.uint64)
    exact = DistinctCounter(exact_limit=10**9)
    for chunk in np.array_split(np.concatenate([values, values[:1000]]), 7):
        exact.add(chunk)
    assert exact.exact and exact.count() == 300_000 and exact.total == 301_000
    sketched = DistinctCounter(exact_limit=50_000)
    for chunk in np.array_split(values, 7):
        sketched.add(chunk)
    assert not sketched.exact
    assert abs(sketched.count() - 300_000) / 300_000 < 0.03


def test_hyperloglog_small_and_large() -> None:
    hll = HyperLogLog()
    hll.add(np.arange(1, 101, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    assert abs(hll.estimate() - 100) < 3


def test_self_bleu_identical_sentences_is_one_and_disjoint_is_near_zero() -> None:
    same = [["the", "nurse", "is", "a", "brilliant", "engineer"]] * 5
    assert self_bleu(same) == pytest.approx(1.0)
    disjoint = [[f"w{i}_{j}" for j in range(6)] for i in range(5)]
    # no n-gram matches: every order falls back to the smoothed 0.1 / count
    expected = math.exp(np.mean([math.log(0.1 / (7 - n)) for n in range(1, 5)]))
    assert self_bleu(disjoint) == pytest.approx(expected)
    assert self_bleu([["only", "one"]]) is None


def _naive_bleu(hyp: list[str], refs: list[list[str]], eps: float = 0.1) -> float:
    """Direct multi-reference BLEU-4 (method1 smoothing), the definition the fast version must match."""
    logs = []
    for n in range(1, 5):
        grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
        total = sum(grams.values())
        if not total:
            continue
        max_ref: Counter = Counter()
        for r in refs:
            for g, c in Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1)).items():
                max_ref[g] = max(max_ref[g], c)
        clipped = sum(min(c, max_ref[g]) for g, c in grams.items())
        logs.append(math.log(clipped / total if clipped else eps / total))
    ref_len = min((len(r) for r in refs), key=lambda x: (abs(x - len(hyp)), x))
    bp = 1.0 if len(hyp) > ref_len else math.exp(1 - ref_len / len(hyp))
    return bp * math.exp(sum(logs) / len(logs))


def test_self_bleu_matches_the_direct_definition() -> None:
    rng = np.random.default_rng(1)
    words = ["the", "woman", "man", "is", "a", "skilled", "pilot", "and", "kind", "nurse"]
    sents = [[words[k] for k in rng.integers(0, len(words), size=rng.integers(3, 12))] for _ in range(30)]
    expected = np.mean([_naive_bleu(s, sents[:i] + sents[i + 1 :]) for i, s in enumerate(sents)])
    assert self_bleu(sents) == pytest.approx(expected, rel=1e-9)


def test_pairwise_cosine_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=(12, 5))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = ["a"] * 5 + ["b"] * 4 + ["c"] * 3
    sims = e @ e.T
    res = pairwise_cosine(e, labels)
    off = ~np.eye(12, dtype=bool)
    assert res["aps"] == pytest.approx(sims[off].mean())
    lab = np.asarray(labels)
    a = lab == "a"
    assert res["within"]["a"]["aps"] == pytest.approx(sims[np.ix_(a, a)][~np.eye(5, dtype=bool)].mean())
    across = lab[:, None] != lab[None, :]
    assert res["across"] == pytest.approx(sims[across].mean())
    # identical embeddings -> APS 1
    assert pairwise_cosine(np.tile(e[:1], (4, 1)), ["x"] * 4)["aps"] == pytest.approx(1.0)


def test_normalised_entropy_known_values() -> None:
    assert normalised_entropy([5, 5]) == pytest.approx(1.0)
    assert normalised_entropy([10, 0], 2) == pytest.approx(0.0)
    p = np.array([0.9, 0.1])
    assert normalised_entropy([9, 1], 3) == pytest.approx(float(-(p * np.log(p)).sum() / math.log(3)))
    assert normalised_entropy([3], 1) is None


def test_bottom_k_sample_is_seeded_bounded_and_merges_to_the_one_pass_sample() -> None:
    whole, first, second = BottomKSample(10, seed=3), BottomKSample(10, seed=3), BottomKSample(10, seed=3)
    for i in range(1000):
        whole.offer(f"f:{i}", i)
        (first if i < 400 else second).offer(f"f:{i}", i)
    second.merge(first)  # merge order does not matter either
    assert whole.items == second.items and len(whole.items) == 10
    other_seed = BottomKSample(10, seed=4)
    for i in range(1000):
        other_seed.offer(f"f:{i}", i)
    assert set(other_seed.items) != set(whole.items)
    # a uniform sample: over many seeds every item is about equally likely
    hits = Counter(x for seed in range(300) for x in _sample_of(range(20), 5, seed))
    assert min(hits.values()) > 300 * 5 / 20 * 0.6


def _sample_of(values: range, size: int, seed: int) -> list[int]:
    s = BottomKSample(size, seed)
    for v in values:
        s.offer(str(v), v)
    return s.items


def test_distinct_counter_merge_equals_one_counter() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2**63, size=120_000, dtype=np.int64).astype(np.uint64)
    for limit in (10**9, 50_000):  # exact, and past the limit (HyperLogLog registers merge by maximum)
        whole = DistinctCounter(exact_limit=limit)
        whole.add(values)
        parts = [DistinctCounter(exact_limit=limit) for _ in range(3)]
        for part, chunk in zip(parts, np.array_split(values, 3), strict=True):
            part.add(chunk)
        parts[0].merge(parts[1])
        parts[0].merge(parts[2])
        assert (parts[0].count(), parts[0].total, parts[0].exact) == (whole.count(), whole.total, whole.exact)


def test_distinct_n_small() -> None:
    sents = [["a", "b", "a", "b"], ["a", "b"]]
    assert distinct_n(sents, 1) == pytest.approx(2 / 6)
    assert distinct_n(sents, 2) == pytest.approx(2 / 4)  # ab, ba, ab | ab
    assert distinct_n([["a"]], 2) is None
