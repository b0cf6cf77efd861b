"""Hygiene checks on single sentences: malformed text, refusals/meta-text, language, benchmark overlap,
near duplicates.

Pure code shared by two stages: `vdata audit` runs them over a whole dataset, the server flags pending
contributions with them on the moderation page. MinHash needs `datasketch` (its permutations and LSH
band split), imported only when a `NearDuplicateIndex` is made.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vdata.core.records import normalise_text

_TOKEN = re.compile(r"[^\W_]+(?:['’\-/+][^\W_]*)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; hyphenated words and contractions stay one token."""
    return _TOKEN.findall(text.casefold())


def _package_yaml(name: str) -> Any:
    return yaml.safe_load(resources.files("vdata.data").joinpath(name).read_text(encoding="utf-8"))


@cache
def hygiene_patterns() -> dict[str, list[dict[str, str]]]:
    return _package_yaml("hygiene.yaml")


@cache
def stopwords() -> dict[str, frozenset[str]]:
    return {lang: frozenset(words) for lang, words in _package_yaml("stopwords.yaml").items()}


MAX_TEXT_CHARS = 4000
MIN_WORDS = 3
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_PLACEHOLDER = re.compile(r"\{\s*\}|\bBLANK\b|\[MASK\]|<mask>|\[(?:S|T|A)\d*\]")


def malformed_reason(text: str, tokens: Sequence[str]) -> str | None:
    """Why a sentence is unusable as training data, or None."""
    if len(text) > MAX_TEXT_CHARS:
        return f"longer than {MAX_TEXT_CHARS} characters"
    if _CONTROL.search(text):
        return "control or replacement characters (broken encoding)"
    if _PLACEHOLDER.search(text):
        return "unfilled template placeholder"
    if len(tokens) < MIN_WORDS:
        return f"fewer than {MIN_WORDS} words"
    return None


class RefusalMatcher:
    """Refusals ("I cannot ...") and meta-text ("Here are 10 sentences:") from the packaged pattern list."""

    def __init__(self) -> None:
        pats = hygiene_patterns()
        self.rules: list[tuple[str, str, re.Pattern[str]]] = [
            (kind, p["name"], re.compile(p["pattern"], re.IGNORECASE))
            for kind in ("refusals", "meta")
            for p in pats[kind]
        ]
        # One combined search first: almost every sentence matches none of the rules.
        self.any_rule = re.compile("|".join(f"(?:{rx.pattern})" for _, _, rx in self.rules), re.IGNORECASE)

    def match(self, text: str) -> str | None:
        """The rule name ("refusals/as-an-ai") of the first pattern found, or None."""
        t = text.strip()
        if not self.any_rule.search(t):
            return None
        for kind, name, rx in self.rules:
            if rx.search(t):
                return f"{kind}/{name}"
        return None


def guess_language(tokens: Sequence[str]) -> str | None:
    """The language whose function words occur most among `tokens`; None when none occur (too short)."""
    best, best_hits = None, 0
    for lang, words in stopwords().items():
        hits = sum(1 for t in tokens if t in words)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best


def non_latin_share(text: str) -> float:
    """Share of letters outside the Latin script (cheap check for e.g. Chinese or Cyrillic sentences)."""
    if text.isascii():
        return 0.0
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if ord(c) > 0x24F) / len(letters)


def language_flag(text: str, tokens: Sequence[str], expected: str) -> str | None:
    """The detected language when it differs from `expected`, else None (unknown counts as expected)."""
    if non_latin_share(text) > 0.5:
        return "non-latin"
    lang = guess_language(tokens)
    if lang is None or lang == expected:
        return None
    own = sum(1 for t in tokens if t in stopwords().get(expected, frozenset()))
    other = sum(1 for t in tokens if t in stopwords()[lang])
    # Short words shared by languages ("a", "in", "de") decide nothing: require a clear margin.
    return lang if other >= 2 and other > 2 * own else None


@dataclass
class BenchmarkIndex:
    """Long n-grams of benchmark sentences, for detecting test-set leakage into training data.

    A record overlaps a benchmark when it shares an `n`-gram of normalised tokens with a benchmark
    sentence, or contains a whole benchmark sentence shorter than `n` tokens (at least `min_len` tokens;
    StereoSet's intrasentence sentences are often 5-7 words).
    """

    n: int = 8
    min_len: int = 5
    long_grams: dict[tuple[str, ...], str] = field(default_factory=dict)
    short_sentences: dict[int, dict[tuple[str, ...], str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add_sentence(self, text: str, benchmark: str) -> None:
        toks = tuple(tokenize(normalise_text(text)))
        if len(toks) >= self.n:
            for i in range(len(toks) - self.n + 1):
                self.long_grams.setdefault(toks[i : i + self.n], benchmark)
        elif len(toks) >= self.min_len:
            self.short_sentences.setdefault(len(toks), {}).setdefault(toks, benchmark)
        self.sizes[benchmark] = self.sizes.get(benchmark, 0) + 1

    def match(self, tokens: Sequence[str]) -> str | None:
        """The benchmark a tokenised record overlaps with, or None."""
        toks = tuple(tokens)
        grams = self.long_grams
        if grams:
            for i in range(len(toks) - self.n + 1):
                hit = grams.get(toks[i : i + self.n])
                if hit:
                    return hit
        for length, sents in self.short_sentences.items():
            for i in range(len(toks) - length + 1):
                hit = sents.get(toks[i : i + length])
                if hit:
                    return hit
        return None


def load_benchmark_index(data_dir: str | Path | None = None, n: int = 8) -> BenchmarkIndex:
    """StereoSet (test + dev, intrasentence: all three sentences of each item) and CrowS-Pairs (both sides)."""
    import csv

    from vdata.core.benchdata import locate

    index = BenchmarkIndex(n=n)
    for split in ("test", "dev"):
        data = json.loads(locate(f"stereoset/{split}.json", data_dir=data_dir).read_text(encoding="utf-8"))
        for example in data["data"]["intrasentence"]:
            for s in example["sentences"]:
                index.add_sentence(s["sentence"], "stereoset")
    with locate("crows_pairs/crows_pairs_anonymized.csv", data_dir=data_dir).open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            index.add_sentence(row["sent_more"], "crows_pairs")
            index.add_sentence(row["sent_less"], "crows_pairs")
    return index


class NearDuplicateIndex:
    """Streaming near-duplicate detection with MinHash signatures and LSH banding.

    Signatures are datasketch's "affine32" MinHash (its permutations, its MurmurHash3 pre-mix) with CRC-32
    shingle hashes, computed for a whole batch at once with numpy; the band/row split is datasketch's
    `MinHashLSH` optimum for the threshold. Like datasketch's LSHBloom, the index keeps only band hashes
    (`HashSet64`: 8 bytes per band per record), so it answers "was a similar record seen before?" in
    bounded memory per record. A test checks the signatures equal `datasketch.MinHash.update_batch`.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, shingle: int = 3, seed: int = 1) -> None:
        from datasketch import MinHash, MinHashLSH

        template = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        self.a, self.b = (np.asarray(x, dtype=np.uint32) for x in template.permutations)
        # Dedup cares more about missed duplicates than about a few extra flags: weight false negatives higher.
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.3, 0.7))
        self.bands, self.rows = lsh.b, lsh.r
        self.shingle = shingle
        self.num_perm = num_perm
        self.threshold = threshold
        self.band_sets = [HashSet64() for _ in range(self.bands)]
        rng = np.random.RandomState(seed)
        self._band_mix = rng.randint(1, 2**62, size=(self.rows,), dtype=np.int64).astype(
            np.uint64
        ) | np.uint64(1)

    def shingles(self, tokens: Sequence[str]) -> list[bytes]:
        k = self.shingle if len(tokens) >= self.shingle else max(1, len(tokens))
        return list(dict.fromkeys(" ".join(tokens[i : i + k]).encode() for i in range(len(tokens) - k + 1)))

    def signatures(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """MinHash signatures (len(token_lists) x num_perm, uint32) for a batch."""
        shingle_hashes: list[int] = []
        offsets = [0]
        for toks in token_lists:
            sh = self.shingles(toks) or [b""]
            shingle_hashes.extend(zlib.crc32(s) for s in sh)
            offsets.append(len(shingle_hashes))
        hv = _fmix32(np.asarray(shingle_hashes, dtype=np.uint32)).reshape(-1, 1)
        with np.errstate(over="ignore"):
            phv = hv * self.a + self.b  # uint32 wrap-around is the modulo 2^32 of the affine scheme
        return np.minimum.reduceat(phv, np.asarray(offsets[:-1]), axis=0)

    def band_hashes(self, sigs: np.ndarray) -> np.ndarray:
        """One 64-bit hash per band: (n x bands)."""
        n = len(sigs)
        used = sigs[:, : self.bands * self.rows].astype(np.uint64).reshape(n, self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (used * self._band_mix).sum(axis=2, dtype=np.uint64)

    def check_and_add(self, token_lists: Sequence[Sequence[str]]) -> list[bool]:
        """For each record in order: True if an earlier record (this batch included) is a near duplicate,
        i.e. all rows of at least one band of their signatures agree."""
        if not token_lists:
            return []
        bands = self.band_hashes(self.signatures(token_lists))
        seen = np.zeros(len(bands), dtype=bool)
        for j, band_set in enumerate(self.band_sets):
            seen |= band_set.check_and_add(bands[:, j])
        return seen.tolist()


class HashSet64:
    """A set of 64-bit hashes in 8 bytes each: a sorted numpy array plus a small set of recent additions,
    folded into the array when it grows past `merge_at` or 1/8 of the array (amortised O(n log n))."""

    def __init__(self, merge_at: int = 50_000) -> None:
        self.sorted = np.empty(0, dtype=np.uint64)
        self.recent: set[int] = set()
        self.merge_at = merge_at

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)

    def check_and_add(self, values: np.ndarray) -> np.ndarray:
        """For each value in order: was it already present (earlier in `values` included)? Adds them all."""
        values = np.asarray(values, dtype=np.uint64)
        out = np.zeros(len(values), dtype=bool)
        if len(self.sorted):
            pos = np.searchsorted(self.sorted, values).clip(max=len(self.sorted) - 1)
            out = self.sorted[pos] == values
        recent = self.recent
        for k, v in enumerate(values.tolist()):
            if out[k]:
                continue
            if v in recent:
                out[k] = True
            else:
                recent.add(v)
        if len(recent) >= max(self.merge_at, len(self.sorted) // 8):
            fresh = np.fromiter(recent, dtype=np.uint64, count=len(recent))
            self.sorted = np.sort(np.concatenate([self.sorted, fresh]))
            self.recent = set()
        return out


_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)


def _fmix32(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * _F1
        h = h ^ (h >> np.uint32(13))
        h = h * _F2
        return h ^ (h >> np.uint32(16))
