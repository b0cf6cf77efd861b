"""Paired intervals from two predictions files: crafted scores with known outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.evaluate.paired import paired_intervals
from vdata.evaluate.report import category_verdicts, comparison_rows
from vdata.evaluate.runner import prepare, run_from_predictions
from vdata.evaluate.settings import EvalSettings


def predictions(settings: EvalSettings, stereotype_wins: int, more_wins: int) -> dict:
    """StereoSet: the stereotype beats the anti-stereotype in every example (`stereotype_wins` 1) or every
    other one (2); CrowS-Pairs: sent_more wins in the first `more_wins` pairs of each group."""
    doc: dict = {"intrasentence": [], "intersentence": []}
    for pb in prepare(settings):
        if pb.definition.name == "stereoset":
            seen: dict[str, int] = {}
            for ex in pb.data.examples:
                k = seen[ex.bias_type] = seen.get(ex.bias_type, 0) + 1
                stereo, anti = (0.9, 0.5) if k % stereotype_wins == 0 else (0.5, 0.9)
                for label, score in (("stereotype", stereo), ("anti-stereotype", anti), ("unrelated", 0.1)):
                    doc["intrasentence"].append({"id": ex.sentence_ids[label], "score": score})
        else:
            rows, seen = [], {}
            for p in pb.data.pairs:
                k = seen[p.group] = seen.get(p.group, 0) + 1
                rows.append(
                    {"id": p.id, "group": p.group, "more": -1.0 if k <= more_wins else -2.0, "less": -1.5}
                )
            doc[pb.definition.name] = rows
    return doc


def test_paired_intervals_see_a_trade_off(data_dir: Path, tmp_path: Path) -> None:
    settings = EvalSettings(bias_types=["race"], limit=40, data_dir=data_dir, resamples=300)
    # before: SS 100, CrowS 50 (20/40); after: SS about 50, CrowS 90 -> StereoSet better, CrowS worse
    (tmp_path / "b.json").write_text(json.dumps(predictions(settings, 1, 20)))
    (tmp_path / "a.json").write_text(json.dumps(predictions(settings, 2, 36)))
    paired = paired_intervals(tmp_path / "b.json", tmp_path / "a.json", settings)
    ss_ci, crows_ci = paired[("stereoset", "race SS")], paired[("crows_pairs", "race-color metric")]
    assert ss_ci[1] < 0 < crows_ci[0]
    before = run_from_predictions(tmp_path / "b.json", settings)
    after = run_from_predictions(tmp_path / "a.json", settings)
    rows = comparison_rows(before, after, paired)
    [verdict] = category_verdicts(rows)
    assert verdict["verdict"] == "trade-off"
    assert all("paired_change_ci" in r for r in rows if "direction" in r and "overall" not in r["label"])


def test_missing_predictions_file(data_dir: Path, tmp_path: Path) -> None:
    settings = EvalSettings(bias_types=["race"], limit=5, data_dir=data_dir)
    with pytest.raises(UserError, match="does not exist"):
        paired_intervals(tmp_path / "nope.json", tmp_path / "nope2.json", settings)
