"""Group balance: which social groups a dataset mentions, how evenly, in which combinations, and which
attribute words it pairs them with. All counters are bounded by the lexicon size (and, for attribute
words, pruned to `max_pairs` entries), so memory does not grow with the dataset."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

from vdata.audit.metrics import normalised_entropy, stable_hash64
from vdata.core.lexicon import Lexicon, term_key


def top_counts(counter: Counter[str], k: int) -> dict[str, int]:
    """The `k` most common entries, ties by key: the same however the counts were accumulated or merged."""
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


class GroupStats:
    def __init__(self, lexicon: Lexicon, max_pairs: int = 200_000, min_attribute_count: int = 5) -> None:
        self.lexicon = lexicon
        self.term_counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.group_records: dict[str, Counter[str]] = defaultdict(Counter)
        self.records_with_category: Counter[str] = Counter()
        self.intersections: Counter[tuple[str, str, str, str]] = Counter()
        self.pairings: Counter[tuple[str, str, str]] = Counter()
        self.max_pairs = max_pairs
        self.min_attribute_count = min_attribute_count
        self.n_records = 0
        self.n_with_any = 0

    def add(self, tokens: list[str], attribute: str) -> dict[str, set[str]]:
        """Count one sentence; returns {category: {groups mentioned}}."""
        self.n_records += 1
        mentions: dict[str, set[str]] = {}
        for cat, grp, term in self.lexicon.match(tokens):
            self.term_counts[cat][term] += 1
            mentions.setdefault(cat, set()).add(grp)
        if not mentions:
            return mentions
        self.n_with_any += 1
        for cat, groups in mentions.items():
            self.records_with_category[cat] += 1
            for g in groups:
                self.group_records[cat][g] += 1
        for c1, c2 in combinations(sorted(mentions), 2):
            for g1 in mentions[c1]:
                for g2 in mentions[c2]:
                    self.intersections[(c1, c2, g1, g2)] += 1
        attr_words = self._attribute_words(tokens, attribute)
        if attr_words:
            for cat, groups in mentions.items():
                for g in groups:
                    for a in attr_words:
                        self.pairings[(cat, g, a)] += 1
            self._prune_pairings()
        return mentions

    def merge(self, other: GroupStats) -> None:
        """Add another shard's counts (same lexicon)."""
        for cat, counts in other.term_counts.items():
            self.term_counts[cat].update(counts)
        for cat, counts in other.group_records.items():
            self.group_records[cat].update(counts)
        self.records_with_category.update(other.records_with_category)
        self.intersections.update(other.intersections)
        self.pairings.update(other.pairings)
        self._prune_pairings()
        self.n_records += other.n_records
        self.n_with_any += other.n_with_any

    def _prune_pairings(self) -> None:
        if len(self.pairings) > self.max_pairs:
            # Drop pairings seen once: rare pairs say nothing about skew, and this bounds memory.
            self.pairings = Counter({k: v for k, v in self.pairings.items() if v > 1})

    def _attribute_words(self, tokens: list[str], attribute: str) -> set[str]:
        if attribute.strip():
            return {attribute.strip().casefold()}
        words = self.lexicon.attribute_words
        return {term_key(t) for t in tokens if term_key(t) in words}

    def report(self, top_terms: int = 25, top_pairs: int = 20) -> dict[str, Any]:
        categories: dict[str, Any] = {}
        for cat in sorted(self.lexicon.groups):
            group_counts = {g: self.group_records[cat].get(g, 0) for g in self.lexicon.groups[cat]}
            total = sum(group_counts.values())
            categories[cat] = {
                "records": self.records_with_category.get(cat, 0),
                "share_of_records": self.records_with_category.get(cat, 0) / self.n_records
                if self.n_records
                else 0.0,
                "group_counts": group_counts,
                "distribution": {g: (c / total if total else 0.0) for g, c in group_counts.items()},
                "entropy": normalised_entropy(list(group_counts.values()), self.lexicon.n_groups(cat))
                if total
                else None,
                "groups_present": sum(1 for c in group_counts.values() if c),
                "groups_defined": len(group_counts),
                "term_counts": top_counts(self.term_counts[cat], top_terms),
                "attribute_skew": self._attribute_skew(cat, group_counts, top_pairs),
            }
        return {
            "records_with_any_group": self.n_with_any,
            "categories": categories,
            "intersections": self._intersections_report(),
        }

    def _intersections_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = sorted({(c1, c2) for c1, c2, _, _ in self.intersections})
        for c1, c2 in pairs:
            g1s, g2s = list(self.lexicon.groups[c1]), list(self.lexicon.groups[c2])
            matrix = [[self.intersections.get((c1, c2, a, b), 0) for b in g2s] for a in g1s]
            cells = len(g1s) * len(g2s)
            covered = sum(1 for row in matrix for v in row if v)
            out[f"{c1} x {c2}"] = {
                "rows": g1s,
                "columns": g2s,
                "counts": matrix,
                "cells_covered": covered,
                "cells": cells,
                "coverage": covered / cells if cells else 0.0,
                "entropy": normalised_entropy([v for row in matrix for v in row], cells),
            }
        return out

    def _attribute_skew(self, cat: str, group_counts: dict[str, int], top_pairs: int) -> dict[str, Any]:
        """How unevenly attribute words are spread over groups, relative to how often each group occurs.

        For each attribute word seen >= `min_attribute_count` times with this category, P(group | word) is
        compared with P(group); `tvd` is the count-weighted mean total variation distance (0 = every word is
        spread like the groups themselves, 1 = every word goes with one group only), and `top` lists the
        most over-represented (word, group) pairs by lift = P(group | word) / P(group).
        """
        total = sum(group_counts.values())
        if not total:
            return {"tvd": None, "words": 0, "top": []}
        base = {g: c / total for g, c in group_counts.items()}
        by_word: dict[str, Counter[str]] = defaultdict(Counter)
        for (c, g, a), n in self.pairings.items():
            if c == cat:
                by_word[a][g] += n
        weighted, weight, top = 0.0, 0, []
        for word, counts in sorted(
            by_word.items()
        ):  # a fixed order: the float sums below do not depend on merges
            n = sum(counts.values())
            if n < self.min_attribute_count:
                continue
            tvd = 0.5 * sum(abs(counts.get(g, 0) / n - p) for g, p in base.items())
            weighted += tvd * n
            weight += n
            for g, k in counts.items():
                if base.get(g) and k > n * base[g]:  # only over-represented pairs
                    top.append(
                        {
                            "attribute": word,
                            "group": g,
                            "count": k,
                            "share": k / n,
                            "base_share": base[g],
                            "lift": (k / n) / base[g],
                            "excess": k - n * base[g],
                        }
                    )
        # Rank by excess count over what the group's base rate predicts: large and well-supported skews first.
        top.sort(key=lambda r: (-r["excess"], r["attribute"], r["group"]))
        return {
            "tvd": weighted / weight if weight else None,
            "words": len([w for w in by_word if sum(by_word[w].values()) >= self.min_attribute_count]),
            "top": top[:top_pairs],
        }


class AttributeCoverage:
    """AttrPrompt-style coverage of `record.attributes`: which values occur per key, and how evenly."""

    def __init__(self, max_values: int = 1000, max_combinations: int = 100_000) -> None:
        self.values: dict[str, Counter[str]] = defaultdict(Counter)
        self.combinations: set[int] = set()
        self.max_values = max_values
        self.max_combinations = max_combinations
        self.records = 0

    def add(self, attributes: dict[str, Any] | None) -> None:
        if not attributes:
            return
        self.records += 1
        combo = []
        for key, value in sorted(attributes.items()):
            vals = value if isinstance(value, list) else [value]
            for v in vals:
                sv = str(v)
                counter = self.values[key]
                if sv in counter or len(counter) < self.max_values:
                    counter[sv] += 1
            combo.append((key, str(vals)))
        if len(self.combinations) < self.max_combinations:
            self.combinations.add(stable_hash64(repr(combo)))

    def merge(self, other: AttributeCoverage) -> None:
        self.records += other.records
        for key, counter in other.values.items():
            mine = self.values[key]
            for value, n in counter.items():
                if value in mine or len(mine) < self.max_values:
                    mine[value] += n
        room = self.max_combinations - len(self.combinations)
        fresh = other.combinations - self.combinations
        self.combinations |= set(sorted(fresh)[: max(0, room)])

    def report(self) -> dict[str, Any] | None:
        if not self.records:
            return None
        keys: dict[str, Any] = {}
        possible = 1
        for key, counter in sorted(self.values.items()):
            possible *= max(1, len(counter))
            keys[key] = {
                "n_values": len(counter),
                "counts": top_counts(counter, 50),
                "evenness": normalised_entropy(list(counter.values())),
                "min_max_ratio": min(counter.values()) / max(counter.values()),
            }
        return {
            "records": self.records,
            "keys": keys,
            "combinations_seen": len(self.combinations),
            "combinations_possible": possible,
            "combination_coverage": len(self.combinations) / possible if possible else None,
        }
