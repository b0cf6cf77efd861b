"""The streaming auditor: one pass over a shard, bounded memory, then sample-based metrics.

`Auditor.add(item)` updates every streaming statistic of one shard's `AuditPartial` (partial.py);
`build_report(merged partial)` decides duplicates, computes the metrics that need a sample (self-BLEU, APS,
stereotype direction) and returns the report dictionary. Both engines (local: the whole dataset is one
shard; Ray: one shard per file) go through these two, so they cannot drift apart. Per record a partial
also remembers one byte (why it would be filtered), so `--filter` can stream the data a second time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vdata.audit.groups import AttributeCoverage, GroupStats, top_counts
from vdata.audit.hygiene import (
    BenchmarkIndex,
    NearDuplicateIndex,
    RefusalMatcher,
    language_flag,
    malformed_reason,
)
from vdata.audit.metrics import (
    BottomKSample,
    DistinctCounter,
    distinct_n,
    ngram_hashes,
    pairwise_cosine,
    self_bleu,
    stable_hash64,
)
from vdata.audit.partial import (
    HYGIENE_KEYS,
    KEEP,
    MALFORMED,
    OVERLAP,
    REFUSAL,
    AuditPartial,
    apply_duplicates,
    example_of,
    resolve_duplicates,
)
from vdata.audit.readers import AuditItem
from vdata.audit.settings import AuditSettings
from vdata.core.hygiene import tokenize
from vdata.core.lexicon import Lexicon, term_key

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


ItemFetcher = Callable[[Sequence[int]], dict[int, AuditItem]]  # ordinals -> those rows, read again


class Auditor:
    """One streaming pass over a shard's items; `partial()` is what it learnt, ready to merge."""

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
        self.refusals = RefusalMatcher()
        self.near = NearDuplicateIndex(threshold=options.near_threshold, num_perm=options.num_perm)
        self.state = AuditPartial(
            groups=GroupStats(lexicon),
            distinct={n: DistinctCounter(options.exact_ngram_limit) for n in (2, 3)},
            sample=BottomKSample(max(options.sample, options.embed_sample), options.seed),
            direction_pool=BottomKSample(options.direction_sample, options.seed + 1),
            attributes=AttributeCoverage(),
            max_examples=options.max_examples,
        )
        self.cda_words = cda_words
        # token -> a 64-bit hash that is the same in every process, so n-gram hashes of shards agree
        self._token_hash: dict[str, int] = {}
        self._batch_tokens: list[list[str]] = []
        self._batch_ordinals: list[int] = []
        self._batch_keys: list[int] = []

    # ---- streaming pass -------------------------------------------------------------------------
    def add(self, item: AuditItem) -> None:
        state = self.state
        ordinal = state.n_records
        state.n_records += 1
        state.reasons.append(KEEP)
        if item.text is None:
            self._flag(ordinal, item, "malformed", MALFORMED, item.malformed or "unreadable row")
            return
        state.n_texts += 1
        tokens = tokenize(item.text)
        reason = item.malformed or malformed_reason(item.text, tokens)
        if reason:
            self._flag(ordinal, item, "malformed", MALFORMED, reason)
        rule = self.refusals.match(item.text)
        if rule:
            self._flag(ordinal, item, "refusals", REFUSAL, rule)
        if self.benchmarks is not None:
            bench = self.benchmarks.match(tokens)
            if bench:
                self._flag(ordinal, item, "benchmark_overlap", OVERLAP, bench)
        lang = language_flag(item.text, tokens, self.opts.language)
        if lang:
            self._flag(ordinal, item, "other_language", None, lang)
        # Duplicates are decided after all shards are merged (partial.resolve_duplicates).
        self._batch_keys.append(int(item.id, 16) if item.id else stable_hash64(item.text))
        mentions = state.groups.add(tokens, item.attribute)
        state.attributes.add(item.attributes)
        label = item.category or (
            next(iter(mentions)) if len(mentions) == 1 else ("mixed" if mentions else "none")
        )
        if item.category and (item.category in state.labels or len(state.labels) < 1000):
            state.labels[item.category] += 1
        state.sample.offer(item.where, (item.id, item.text, label))
        if self.cda_words is not None and any(term_key(t) in self.cda_words for t in tokens):
            state.direction_pool.offer(item.where, (item.id, item.text, sorted(mentions)))
        self._batch_tokens.append(tokens)
        self._batch_ordinals.append(ordinal)
        if len(self._batch_tokens) >= self.opts.batch_size:
            self._flush()

    def _flag(self, ordinal: int, item: AuditItem, key: str, code: int | None, detail: str) -> None:
        state = self.state
        state.counts[key] += 1
        if detail and key in state.detail:
            state.detail[key][detail.split(":")[0][:80]] += 1
        if len(state.examples[key]) < self.opts.max_examples:
            state.examples[key].append(example_of(ordinal, item, detail))
        if code is not None:
            current = state.reasons[ordinal]
            if current == KEEP or code < current:
                state.reasons[ordinal] = code

    def _flush(self) -> None:
        tokens = self._batch_tokens
        if not tokens:
            return
        state, token_hash = self.state, self._token_hash
        ids: list[int] = []
        starts = [0]
        for toks in tokens:
            for t in toks:
                h = token_hash.get(t)
                if h is None:
                    h = token_hash[t] = stable_hash64(t)
                ids.append(h)
            starts.append(len(ids))
        state.n_tokens += len(ids)
        arr = np.asarray(ids, dtype=np.uint64)
        start_arr = np.asarray(starts, dtype=np.int64)
        for n, counter in state.distinct.items():
            counter.add(ngram_hashes(arr, start_arr, n))
        state.text_ordinals.append(np.asarray(self._batch_ordinals, dtype=np.int64))
        state.text_keys.append(np.asarray(self._batch_keys, dtype=np.uint64))
        state.bands.append(self.near.band_hashes(self.near.signatures(tokens)))
        self._batch_tokens, self._batch_ordinals, self._batch_keys = [], [], []

    def partial(self) -> AuditPartial:
        """This shard's state (the auditor is spent afterwards)."""
        self._flush()
        self.state.vocab = set(self._token_hash)
        return self.state

    def near_duplicate_method(self) -> dict[str, Any]:
        return {
            "num_perm": self.near.num_perm,
            "bands": self.near.bands,
            "rows": self.near.rows,
            "threshold": self.near.threshold,
            "shingle_words": self.near.shingle,
        }


def build_report(
    merged: AuditPartial,
    options: AuditOptions,
    *,
    near_method: dict[str, Any],
    fetch_items: ItemFetcher,
    benchmark_sizes: dict[str, int] | None = None,
    embedder: Embedder | None = None,
    direction: DirectionScorer | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The report of a whole dataset from its merged partial (whose duplicates and `reasons` it settles).

    `fetch_items(ordinals)` reads the given rows again (examples of duplicates are known only now);
    `embedder(texts) -> unit vectors`; `direction(samples) -> dict` (see direction.py), None when no target
    model was given; `progress(step)` is told each slow step as it starts."""
    if progress:
        progress("duplicates")
    dups = resolve_duplicates(merged)
    apply_duplicates(merged, dups)
    first = {"exact_duplicates": dups.exact[: options.max_examples].tolist()}
    first["near_duplicates"] = dups.near[: options.max_examples].tolist()
    rows = fetch_items(sorted({o for ords in first.values() for o in ords}))
    for key, ordinals in first.items():
        merged.examples[key] = [example_of(o, rows[o]) for o in ordinals]
    sample = merged.sample.items
    bleu_sample = [tokenize(text) for _, text, _ in sample[: options.sample]]
    if progress:
        progress("self-BLEU")
    vocab_size = len(merged.vocab)
    diversity: dict[str, Any] = {
        "vocab_size": vocab_size,
        "tokens": merged.n_tokens,
        "distinct_1": vocab_size / merged.n_tokens if merged.n_tokens else None,
        "distinct_2": _distinct(merged.distinct[2]),
        "distinct_3": _distinct(merged.distinct[3]),
        "distinct_exact": all(c.exact for c in merged.distinct.values()),
        # distinct-n falls as a corpus grows; on a fixed-size sample it compares datasets of any size.
        "sample_distinct": {f"distinct_{n}": distinct_n(bleu_sample, n) for n in (1, 2, 3)},
        "self_bleu": self_bleu(bleu_sample),
        "self_bleu_sample": len(bleu_sample),
        "aps": None,
        "aps_sample": 0,
    }
    if embedder is not None and options.embed_sample > 0 and len(sample) >= 2:
        if progress:
            progress("embeddings")
        emb_sample = sample[: options.embed_sample]
        vectors = embedder([text for _, text, _ in emb_sample])
        aps = pairwise_cosine(vectors, [label for _, _, label in emb_sample])
        diversity.update(
            aps=aps["aps"],
            aps_sample=aps["n"],
            aps_within=aps["within"],
            aps_within_mean=aps["within_mean"],
            aps_across=aps["across"],
        )
    groups = merged.groups.report()
    report: dict[str, Any] = {
        "n_records": merged.n_records,
        "n_texts": merged.n_texts,
        "labels": top_counts(merged.labels, len(merged.labels)),
        "diversity": diversity,
        "groups": groups["categories"],
        "groups_summary": {
            "records_with_any_group": groups["records_with_any_group"],
            "share_with_any_group": groups["records_with_any_group"] / merged.n_texts
            if merged.n_texts
            else 0.0,
            "mean_entropy": _mean([v["entropy"] for v in groups["categories"].values()]),
        },
        "intersections": groups["intersections"],
        "attribute_coverage": merged.attributes.report(),
        "hygiene": _hygiene(merged, near_method, benchmark_sizes),
        "direction": dict(DIRECTION_NEEDS_A_MODEL),
        "options": asdict(options),
    }
    pool = merged.direction_pool.items
    if direction is not None and not pool:
        report["direction"] = dict(DIRECTION_NEEDS_GROUP_TERMS)
    elif direction is not None:
        if progress:
            progress("stereotype direction")
        report["direction"] = direction(pool)
    return report


def _distinct(counter: DistinctCounter) -> float | None:
    return counter.count() / counter.total if counter.total else None


def _hygiene(
    merged: AuditPartial, near_method: dict[str, Any], benchmark_sizes: dict[str, int] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    examples = {k: [ex for _, ex in merged.examples[k]] for k in HYGIENE_KEYS}
    for k in HYGIENE_KEYS:
        out[k] = int(merged.counts.get(k, 0))
        out[f"{k}_ids"] = [ex["id"] for ex in examples[k]]
    out["examples"] = examples
    out["breakdown"] = {k: top_counts(v, 20) for k, v in merged.detail.items() if v}
    if benchmark_sizes is not None:
        out["benchmark_sizes"] = dict(benchmark_sizes)
    out["removable"] = len(merged.reasons) - merged.reasons.count(KEEP)
    out["near_duplicate_method"] = near_method
    return out


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None
