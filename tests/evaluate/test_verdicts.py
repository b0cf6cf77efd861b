"""Guardrails: a before/after comparison names a trade-off per bias category instead of reporting a win."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vdata.evaluate.report import bias_direction, category_verdicts, compare_table, comparison_rows
from vdata.evaluate.stats import paired_distance_change


def results(
    stereo: dict[str, tuple[float, list[float]]], crows: dict[str, tuple[float, list[float]]]
) -> dict:
    """A results file as `vdata eval` writes it, with the given SS and CrowS-Pairs scores and intervals."""
    return {
        "model": "m",
        "stereoset": {
            "split": "test",
            "intrasentence": {
                d: {"SS": ss, "LMS": 90.0, "ICAT": 60.0, "n": 50, "ss_ci95": ci}
                for d, (ss, ci) in stereo.items()
            },
        },
        "crows_pairs": {g: {"metric": m, "n": 100, "ci95": ci} for g, (m, ci) in crows.items()},
        "provenance": {},
    }


# The race row: StereoSet 60.01 -> 48.37, CrowS race-color 50.00 -> 58.33 [54.45, 62.21].
BEFORE = results(
    {"race": (60.01, [57.0, 63.0]), "gender": (64.01, [60.61, 67.49]), "religion": (64.89, [58.0, 71.0])},
    {
        "race-color": (50.0, [45.7, 54.3]),
        "gender": (52.67, [46.56, 59.16]),
        "religion": (55.24, [45.7, 64.8]),
    },
)
AFTER = results(
    {"race": (48.37, [45.5, 51.3]), "gender": (58.72, [55.03, 62.15]), "religion": (61.11, [54.0, 68.0])},
    {
        "race-color": (58.33, [54.45, 62.21]),
        "gender": (50.38, [44.66, 56.11]),
        "religion": (58.10, [48.57, 67.62]),
    },
)


def test_race_is_a_trade_off_gender_debiases_religion_no_effect() -> None:
    verdicts = {v["category"]: v for v in category_verdicts(comparison_rows(BEFORE, AFTER))}
    assert verdicts["race"]["verdict"] == "trade-off"
    assert verdicts["race"]["better"] == ["StereoSet race SS"]
    assert verdicts["race"]["worse"] == ["CrowS-Pairs race-color"]
    # gender: SS left its interval toward 50; CrowS 50.38 is inside the after CI around 52.67
    assert verdicts["gender"]["verdict"] == "debiases"
    assert verdicts["gender"]["unchanged"] == ["CrowS-Pairs gender"]
    # religion: both before values lie inside the after intervals
    assert verdicts["religion"]["verdict"] == "no effect"


def test_worse_when_nothing_improves() -> None:
    after = results({"race": (60.5, [58.0, 63.0])}, {"race-color": (58.33, [54.45, 62.21])})
    before = results({"race": (60.01, [57.0, 63.0])}, {"race-color": (50.0, [45.7, 54.3])})
    [v] = category_verdicts(comparison_rows(before, after))
    assert (v["category"], v["verdict"], v["worse"]) == ("race", "worse", ["CrowS-Pairs race-color"])


def test_paired_intervals_override_the_after_interval() -> None:
    # Same after-CI as the trade-off, but the caller's paired interval of the change says "noise".
    paired = {("crows_pairs", "race-color metric"): [-0.5, 9.0]}
    rows = comparison_rows(BEFORE, AFTER, paired)
    race = next(r for r in rows if r["metric"] == "CrowS-Pairs race-color")
    assert race["direction"] == "within interval" and race["paired_change_ci"] == [-0.5, 9.0]
    verdicts = {v["category"]: v["verdict"] for v in category_verdicts(rows)}
    assert verdicts["race"] == "debiases"


@pytest.mark.parametrize(
    ("before", "after", "ci", "paired", "expected"),
    [
        (60.0, 52.0, [49.0, 55.0], None, "toward 50"),
        (50.0, 58.0, [54.0, 62.0], None, "away from 50"),
        (52.0, 53.0, [49.0, 57.0], None, "within interval"),
        (52.0, 53.0, None, None, "no interval"),
        (60.0, 52.0, [49.0, 55.0], [-12.0, -4.0], "toward 50"),
        (60.0, 52.0, [49.0, 55.0], [-12.0, 1.0], "within interval"),
        (50.0, 58.0, [54.0, 62.0], [2.0, 14.0], "away from 50"),
    ],
)
def test_direction(
    before: float, after: float, ci: list[float] | None, paired: list[float] | None, expected: str
) -> None:
    assert bias_direction(before, after, ci, paired) == expected


def test_paired_distance_change_known_answer() -> None:
    # 100 examples: before 80 stereotyped (80, distance 30), after 50 (distance 0): all of the bias removed.
    before = [1] * 80 + [0] * 20
    after = [1] * 50 + [0] * 50
    got = paired_distance_change(before, after, [0] * 100, 1, resamples=500, seed=0)
    assert got["change"] == pytest.approx(-30.0)
    assert got["reduction_pct"] == pytest.approx(100.0)
    assert got["change_ci"][0] < -30.0 < got["change_ci"][1] < 0
    # macro over two groups: group 0 all stereotyped (100), group 1 none (0): SS 50 both times
    flat = paired_distance_change([1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], 2, resamples=100)
    assert flat["change"] == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        paired_distance_change([1, 0], [1], [0, 0], 1, resamples=10)


def test_compare_table_says_not_a_win(tmp_path: Path) -> None:
    table = compare_table(BEFORE, AFTER)
    assert "**Not a win: race got more biased on at least one benchmark" in table
    assert "- **race: trade-off**. better: StereoSet race SS 60.01 → 48.37" in table
    assert (
        "**worse**: CrowS-Pairs race-color 50.00 → 58.33 (before value outside the after CI [54.45, 62.21])"
        in table
    )
    assert "- **gender: debiases**" in table and "- **religion: no effect**" in table
    # the trade-off line comes before the win
    assert table.index("race: trade-off") < table.index("gender: debiases")


def test_vdata_eval_compare_prints_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "before.json").write_text(json.dumps(BEFORE))
    (tmp_path / "after.json").write_text(json.dumps(AFTER))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "eval",
            "compare",
            str(tmp_path / "before.json"),
            str(tmp_path / "after.json"),
            "--out",
            str(tmp_path / "c.md"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "c.md").read_text()
    assert "race: trade-off" in written and "race: trade-off" in done.stdout
