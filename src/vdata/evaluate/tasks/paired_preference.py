"""Paired-preference benchmarks (CrowS-Pairs, BiasTestGPT, ...): one (more, less) sentence pair per item,
scored with the CrowS-Pairs score of the model's kind (`Scorer.pair_scores`). The definition's `loader`
names the file format (`vdata.evaluate.pairs.LOADERS`); metric and loaders are in `vdata.evaluate.pairs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.evaluate import pairs
from vdata.evaluate.definitions import BenchmarkDef
from vdata.evaluate.tasks.base import Scored, TaskType, register_task
from vdata.lm.scorer import Scorer

PairScores = dict[str, tuple[float, float]]  # pair id -> (score(more), score(less))


@dataclass(frozen=True)
class PairData:
    groups: list[str]  # the bias types evaluated
    pairs: list[pairs.Pair]  # theirs, the first `limit` per bias type
    all_pairs: list[pairs.Pair]  # every pair of the files: predictions files are checked against them


@register_task
class PairedPreference(TaskType[PairData, PairScores]):
    name = "paired_preference"
    scores_pairs = True

    def load(
        self,
        benchmark: BenchmarkDef,
        files: Mapping[str, Path],
        groups: Sequence[str],
        *,
        split: str,
        limit: int | None,
    ) -> PairData:
        if benchmark.loader not in pairs.LOADERS:
            raise ValueError(f"benchmark {benchmark.name}: unknown loader {benchmark.loader!r}")
        loaded = [p for path in files.values() for p in pairs.LOADERS[benchmark.loader](path)]
        return PairData(list(groups), pairs.select(loaded, groups, limit), loaded)

    def score(self, benchmark: BenchmarkDef, data: PairData, scorer: Scorer) -> Scored[PairScores]:
        scored = scorer.pair_scores([(p.more, p.less) for p in data.pairs], benchmark.name)
        rows = [
            {"id": p.id, "group": p.group, "more": s[0], "less": s[1]}
            for p, s in zip(data.pairs, scored, strict=True)
        ]
        return Scored(dict(zip([p.id for p in data.pairs], scored, strict=True)), {benchmark.name: rows})

    def scores_from_predictions(
        self, benchmark: BenchmarkDef, data: PairData, doc: Any, source: Path
    ) -> PairScores:
        name = benchmark.name
        rows = doc.get(name) if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise UserError(
                f"{source} has no '{name}' predictions; drop {name} from --benchmarks or use a "
                "predictions file written by `vdata eval --predictions-out`"
            )
        known = {p.id for p in data.all_pairs}
        scores: PairScores = {}
        for i, row in enumerate(rows):
            try:
                pid, more, less = str(row["id"]), float(row["more"]), float(row["less"])
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{source}: {name}[{i}] is not {{'id', 'more', 'less'}}") from e
            if pid not in known:
                raise UserError(
                    f"{source}: unknown {name} pair id {pid!r} ({name}[{i}]); the file does not "
                    f"belong to this version of {name}"
                )
            scores[pid] = (more, less)
        missing = [p.id for p in data.pairs if p.id not in scores]
        if missing:
            raise UserError(
                f"{source}: {len(missing)} {name} pair(s) have no scores (first: {missing[0]}); "
                "pass the same --limit/--bias-types used to produce the file"
            )
        return scores

    def aggregate(
        self, benchmark: BenchmarkDef, data: PairData, scores: PairScores, *, resamples: int, seed: int
    ) -> dict[str, Any]:
        return pairs.evaluate(data.pairs, scores, data.groups, benchmark.summaries, resamples, seed)
