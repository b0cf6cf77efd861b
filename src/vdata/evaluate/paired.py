"""Paired intervals for a before/after comparison, from the two runs' predictions files.

`vdata eval compare` can tell a real change from noise better when it has per-example outcomes of both
runs: each bootstrap sample then draws the same examples before and after, and the interval of the change
of |score - 50| is far narrower than two separate intervals. `paired_intervals` re-reads two predictions
files (`vdata eval --predictions-out`) against the benchmark data and returns, per bias score, that interval,
keyed as `report.comparison_rows(..., paired=...)` expects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.evaluate import stereoset
from vdata.evaluate.runner import prepare
from vdata.evaluate.settings import EvalSettings
from vdata.evaluate.stats import paired_distance_change
from vdata.evaluate.tasks.paired_preference import PairData
from vdata.evaluate.tasks.stereoset_intrasentence import StereoSetData


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"predictions file {path} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"predictions file {path} is not JSON ({e})") from e


def paired_intervals(before: Path, after: Path, settings: EvalSettings) -> dict[tuple[str, str], list[float]]:
    """(benchmark, row label) -> paired 95% interval of |after - 50| - |before - 50| for every bias score
    both predictions files cover (StereoSet SS per domain, each paired benchmark's groups)."""
    docs = _read(before), _read(after)
    out: dict[tuple[str, str], list[float]] = {}
    for pb in prepare(settings):
        name = pb.definition.name
        scores = [
            pb.task.scores_from_predictions(pb.definition, pb.data, d, p)
            for d, p in zip(docs, (before, after), strict=True)
        ]
        if isinstance(pb.data, StereoSetData):
            for domain in pb.data.groups:
                examples = [ex for ex in pb.data.examples if ex.bias_type == domain]
                targets = sorted({ex.target for ex in examples})
                index = [targets.index(ex.target) for ex in examples]
                outcomes = [[float(stereoset.example_outcomes(ex, s)[0]) for ex in examples] for s in scores]
                change = paired_distance_change(
                    *outcomes, index, len(targets), settings.resamples, settings.seed
                )
                out[(name, f"{domain} SS")] = change["change_ci"]  # type: ignore[assignment]
        elif isinstance(pb.data, PairData):
            for group in pb.data.groups:
                pairs = [p for p in pb.data.pairs if p.group == group]
                kept = [p for p in pairs if not any(math.isnan(x) for s in scores for x in s[p.id])]
                outcomes = [[float(s[p.id][0] > s[p.id][1]) for p in kept] for s in scores]
                change = paired_distance_change(
                    *outcomes, [0] * len(kept), 1, settings.resamples, settings.seed
                )
                out[(name, f"{group} metric")] = change["change_ci"]  # type: ignore[assignment]
    return out
