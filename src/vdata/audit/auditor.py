"""The streaming auditor: one pass over a dataset, bounded memory, then sample-based metrics.

`Auditor.add(item)` updates every streaming statistic; `Auditor.finish()` computes the metrics that need
a sample (self-BLEU, APS, stereotype direction) and returns the report dictionary. Per record the auditor
also remembers one byte (why it would be filtered), so `--filter` can stream the data a second time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vdata.audit.groups import AttributeCoverage, GroupStats
from vdata.audit.hygiene import (
    BenchmarkIndex,
    HashSet64,
    NearDuplicateIndex,
    RefusalMatcher,
    language_flag,
    malformed_reason,
)
from vdata.audit.lexicons import Lexicon, term_key, tokenize
from vdata.audit.metrics import (
    DistinctCounter,
    Reservoir,
    distinct_n,
    ngram_hashes,
    pairwise_cosine,
    self_bleu,
)
from vdata.audit.readers import AuditItem
from vdata.audit.settings import AuditSettings

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


# Stereotype direction's place in report.json when it was not measured: why, and what turns it on.
DIRECTION_NEEDS_A_MODEL: dict[str, Any] = {
    "measured": False,
    "reason": "no target model was given; the direction is the target model's preference for each sentence "
    "over its CDA counterfactual",
    "how": "pass --target-model MODEL (e.g. --target-model smollm2-135m)",
}
DIRECTION_NEEDS_GROUP_TERMS: dict[str, Any] = {
    "measured": False,
    "reason": "no sampled sentence contains a term from the CDA word lists, so there is nothing to swap",
    "how": "audit data that mentions gender, race or religion terms, or pass --word-lists FILE covering it",
}

Embedder = Callable[[list[str]], np.ndarray]
DirectionScorer = Callable[[list[tuple[str, str, list[str]]]], dict[str, Any]]


@dataclass(kw_only=True)
class AuditOptions:
    """The auditor's knobs: the user's sampling settings (from `AuditSettings`) and fixed internals.

    Written to report.json as `options`, in this order.
    """

    sample: int  # self-BLEU sample size
    embed_sample: int  # APS sample size (0 = skip embeddings)
    direction_sample: int  # sentences scored with --target-model
    seed: int
    near_threshold: float
    num_perm: int = 64
    language: str
    max_examples: int = 5
    batch_size: int = 4096
    exact_ngram_limit: int = 2_000_000

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditOptions:
        return cls(
            sample=settings.sample,
            embed_sample=settings.embed_sample,
            direction_sample=settings.direction_sample,
            seed=settings.seed,
            near_threshold=settings.near_threshold,
            language=settings.language,
        )


class Auditor:
    def __init__(
        self,
        lexicon: Lexicon,
        options: AuditOptions,
        benchmark_index: BenchmarkIndex | None = None,
        cda_words: frozenset[str] | None = None,
    ) -> None:
        self.opts = options
        self.lexicon = lexicon
        self.benchmarks = benchmark_index
        self.groups = GroupStats(lexicon)
        self.attributes = AttributeCoverage()
        self.refusals = RefusalMatcher()
        self.near = NearDuplicateIndex(threshold=self.opts.near_threshold, num_perm=self.opts.num_perm)
        self.vocab: dict[str, int] = {}
        self.distinct = {n: DistinctCounter(self.opts.exact_ngram_limit) for n in (2, 3)}
        self.n_tokens = 0
        self.n_records = 0
        self.n_texts = 0
        self.seen_texts = HashSet64()
        self.reasons = bytearray()
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, str]]] = {k: [] for k in HYGIENE_KEYS}
        self.detail: dict[str, Counter[str]] = {
            k: Counter() for k in ("malformed", "refusals", "benchmark_overlap", "other_language")
        }
        self.labels: Counter[str] = Counter()
        self.sample = Reservoir(max(self.opts.sample, self.opts.embed_sample), self.opts.seed)
        self.cda_words = cda_words
        self.direction_pool = Reservoir(self.opts.direction_sample, self.opts.seed + 1)
        self._batch_tokens: list[list[str]] = []
        self._batch_items: list[AuditItem] = []
        self._batch_keys: list[int] = []

    # ---- streaming pass -------------------------------------------------------------------------
    def add(self, item: AuditItem) -> None:
        self.n_records += 1
        self.reasons.append(KEEP)
        if item.text is None:
            self._flag(item, "malformed", MALFORMED, item.malformed or "unreadable row")
            return
        self.n_texts += 1
        tokens = tokenize(item.text)
        reason = item.malformed or malformed_reason(item.text, tokens)
        if reason:
            self._flag(item, "malformed", MALFORMED, reason)
        rule = self.refusals.match(item.text)
        if rule:
            self._flag(item, "refusals", REFUSAL, rule)
        if self.benchmarks is not None:
            bench = self.benchmarks.match(tokens)
            if bench:
                self._flag(item, "benchmark_overlap", OVERLAP, bench)
        lang = language_flag(item.text, tokens, self.opts.language)
        if lang:
            self._flag(item, "other_language", None, lang)
        # Exact duplicates are decided per batch in _flush (8 bytes per distinct text, see HashSet64).
        self._batch_keys.append(int(item.id, 16) if item.id else hash(item.text) & 0xFFFFFFFFFFFFFFFF)
        mentions = self.groups.add(tokens, item.attribute)
        self.attributes.add(item.attributes)
        label = item.category or (
            next(iter(mentions)) if len(mentions) == 1 else ("mixed" if mentions else "none")
        )
        if item.category and (item.category in self.labels or len(self.labels) < 1000):
            self.labels[item.category] += 1
        self.sample.offer((item.id, item.text, label))
        if self.cda_words is not None and any(term_key(t) in self.cda_words for t in tokens):
            self.direction_pool.offer((item.id, item.text, sorted(mentions)))
        self._batch_tokens.append(tokens)
        self._batch_items.append(item)
        if len(self._batch_tokens) >= self.opts.batch_size:
            self._flush()

    def _flag(self, item: AuditItem, key: str, code: int | None, detail: str) -> None:
        self.counts[key] += 1
        if detail and key in self.detail:
            self.detail[key][detail.split(":")[0][:80]] += 1
        if len(self.examples[key]) < self.opts.max_examples:
            ex = {"id": item.id, "where": item.where}
            if item.text:
                ex["text"] = item.text[:160]
            if detail:
                ex["why"] = detail
            self.examples[key].append(ex)
        if code is not None:
            current = self.reasons[item.ordinal]
            if current == KEEP or code < current:
                self.reasons[item.ordinal] = code

    def _flush(self) -> None:
        tokens, items = self._batch_tokens, self._batch_items
        if not tokens:
            return
        vocab = self.vocab
        ids: list[int] = []
        starts = [0]
        for toks in tokens:
            for t in toks:
                i = vocab.get(t)
                if i is None:
                    i = vocab[t] = len(vocab)
                ids.append(i)
            starts.append(len(ids))
        self.n_tokens += len(ids)
        arr = np.asarray(ids, dtype=np.int64)
        start_arr = np.asarray(starts, dtype=np.int64)
        for n, counter in self.distinct.items():
            counter.add(ngram_hashes(arr, start_arr, n))
        exact = self.seen_texts.check_and_add(np.asarray(self._batch_keys, dtype=np.uint64)).tolist()
        for k, is_dup in enumerate(exact):
            if is_dup:
                self._flag(items[k], "exact_duplicates", EXACT_DUP, "")
        candidates = [k for k, is_dup in enumerate(exact) if not is_dup]
        near = self.near.check_and_add([tokens[k] for k in candidates])
        for k, is_near in zip(candidates, near, strict=True):
            if is_near:
                self._flag(items[k], "near_duplicates", NEAR_DUP, "")
        self._batch_tokens, self._batch_items, self._batch_keys = [], [], []

    # ---- finishing ------------------------------------------------------------------------------
    def finish(
        self,
        embedder: Embedder | None = None,
        direction: DirectionScorer | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The report. `embedder(texts) -> unit vectors`; `direction(samples) -> dict` (see direction.py),
        None when no target model was given; `progress(step)` is told each slow step as it starts."""
        self._flush()
        sample = self.sample.shuffled()
        bleu_sample = [tokenize(text) for _, text, _ in sample[: self.opts.sample]]
        if progress:
            progress("self-BLEU")
        diversity: dict[str, Any] = {
            "vocab_size": len(self.vocab),
            "tokens": self.n_tokens,
            "distinct_1": len(self.vocab) / self.n_tokens if self.n_tokens else None,
            "distinct_2": self._distinct(2),
            "distinct_3": self._distinct(3),
            "distinct_exact": all(c.exact for c in self.distinct.values()),
            # distinct-n falls as a corpus grows; on a fixed-size sample it compares datasets of any size.
            "sample_distinct": {f"distinct_{n}": distinct_n(bleu_sample, n) for n in (1, 2, 3)},
            "self_bleu": self_bleu(bleu_sample),
            "self_bleu_sample": len(bleu_sample),
            "aps": None,
            "aps_sample": 0,
        }
        if embedder is not None and self.opts.embed_sample > 0 and len(sample) >= 2:
            if progress:
                progress("embeddings")
            emb_sample = sample[: self.opts.embed_sample]
            vectors = embedder([text for _, text, _ in emb_sample])
            aps = pairwise_cosine(vectors, [label for _, _, label in emb_sample])
            diversity.update(
                aps=aps["aps"],
                aps_sample=aps["n"],
                aps_within=aps["within"],
                aps_within_mean=aps["within_mean"],
                aps_across=aps["across"],
            )
        groups = self.groups.report()
        report: dict[str, Any] = {
            "n_records": self.n_records,
            "n_texts": self.n_texts,
            "labels": dict(self.labels.most_common()),
            "diversity": diversity,
            "groups": groups["categories"],
            "groups_summary": {
                "records_with_any_group": groups["records_with_any_group"],
                "share_with_any_group": groups["records_with_any_group"] / self.n_texts
                if self.n_texts
                else 0.0,
                "mean_entropy": _mean([v["entropy"] for v in groups["categories"].values()]),
            },
            "intersections": groups["intersections"],
            "attribute_coverage": self.attributes.report(),
            "hygiene": self._hygiene(),
            "direction": dict(DIRECTION_NEEDS_A_MODEL),
            "options": asdict(self.opts),
        }
        if direction is not None and not self.direction_pool.items:
            report["direction"] = dict(DIRECTION_NEEDS_GROUP_TERMS)
        elif direction is not None:
            if progress:
                progress("stereotype direction")
            report["direction"] = direction(self.direction_pool.shuffled())
        return report

    def _distinct(self, n: int) -> float | None:
        counter = self.distinct[n]
        return counter.count() / counter.total if counter.total else None

    def _hygiene(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in HYGIENE_KEYS:
            out[k] = int(self.counts.get(k, 0))
            out[f"{k}_ids"] = [ex["id"] for ex in self.examples[k]]
        out["examples"] = self.examples
        out["breakdown"] = {k: dict(v.most_common(20)) for k, v in self.detail.items() if v}
        if self.benchmarks is not None:
            out["benchmark_sizes"] = dict(self.benchmarks.sizes)
        out["removable"] = int(sum(1 for r in self.reasons if r != KEEP))
        out["near_duplicate_method"] = {
            "num_perm": self.near.num_perm,
            "bands": self.near.bands,
            "rows": self.near.rows,
            "threshold": self.near.threshold,
            "shingle_words": self.near.shingle,
        }
        return out

    def removal_summary(self) -> dict[str, int]:
        counts = Counter(self.reasons)
        return {REASON_NAMES[c]: counts.get(c, 0) for c in REASON_NAMES}


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None
