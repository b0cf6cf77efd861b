"""Hygiene checks on single sentences: malformed text, refusals/meta-text, language, benchmark overlap,
near duplicates.

Pure code shared by two stages: `vdata audit` runs them over a whole dataset, the server flags pending
contributions with them on the moderation page. Near duplicates (MinHash, numpy) are in
`vdata.core.minhash`, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

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
