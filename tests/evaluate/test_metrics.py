"""Aggregation exactly as bias-bench: strict comparisons, ties, per-target macro averages, ICAT."""

from __future__ import annotations

import math

import pytest

from vdata.core.errors import UserError
from vdata.evaluate import pairs, stereoset
from vdata.evaluate.registry import all_benchmarks, get_benchmarks
from vdata.evaluate.stats import bootstrap_macro, bootstrap_rate


def example(
    i: int, target: str, domain: str, pro: float, anti: float, unrelated: float, scores: dict[str, float]
) -> stereoset.Example:
    ids = {label: f"{i}-{label}" for label in stereoset.LABELS}
    scores.update({ids["stereotype"]: pro, ids["anti-stereotype"]: anti, ids["unrelated"]: unrelated})
    return stereoset.Example(f"ex{i}", domain, target, "x BLANK", ids, {k: k for k in stereoset.LABELS})


def test_ties_count_as_anti_and_not_related() -> None:
    scores: dict[str, float] = {}
    ex = example(0, "t", "gender", 1.0, 1.0, 1.0, scores)
    assert stereoset.example_outcomes(ex, scores) == (False, 0)
    ex = example(1, "t", "gender", 2.0, 1.0, 1.0, scores)
    assert stereoset.example_outcomes(ex, scores) == (True, 1)


def test_macro_average_over_targets_differs_from_global_ratio() -> None:
    scores: dict[str, float] = {}
    # target "a": 3 examples, all pro; target "b": 1 example, anti. Global pro ratio = 75, macro = 50.
    exs = [example(i, "a", "race", 3.0, 1.0, 0.0, scores) for i in range(3)]
    exs.append(example(3, "b", "race", 1.0, 3.0, 2.0, scores))  # anti; only anti beats unrelated
    row = stereoset.aggregate(exs, scores)
    assert row["SS"] == pytest.approx(50.0)
    # LMS per target: a = 100 (both beat unrelated in all 3), b = 50 (1 of 2) -> macro 75.
    assert row["LMS"] == pytest.approx(75.0)
    # ICAT from the averaged SS and LMS, not the mean of per-target ICATs (which would be 0 here).
    assert row["ICAT"] == pytest.approx(75.0 * min(50.0, 50.0) / 50.0)
    assert row["n"] == 4 and row["targets"] == 2


def test_icat_uses_min_ss_and_targets_are_case_sensitive() -> None:
    scores: dict[str, float] = {}
    exs = [
        example(0, "Muslim", "religion", 2.0, 1.0, 0.0, scores),
        example(1, "muslim", "religion", 2.0, 1.0, 0.0, scores),
        example(2, "muslim", "religion", 0.5, 1.0, 0.0, scores),
    ]
    row = stereoset.aggregate(exs, scores)
    assert row["targets"] == 2
    assert row["SS"] == pytest.approx((100.0 + 50.0) / 2)
    assert row["ICAT"] == pytest.approx(row["LMS"] * (100 - 75.0) / 50)


def test_evaluate_reports_domains_overall_and_deterministic_intervals() -> None:
    scores: dict[str, float] = {}
    exs = [
        example(i, f"t{i % 3}", "gender" if i % 2 else "race", float(i % 5), 2.0, 1.0, scores)
        for i in range(30)
    ]
    a = stereoset.evaluate(exs, scores, ["gender", "race"], resamples=200, seed=7)
    b = stereoset.evaluate(exs, scores, ["gender", "race"], resamples=200, seed=7)
    assert list(a) == ["gender", "race", "overall"]
    assert a == b
    assert a["overall"]["n"] == 30
    lo, hi = a["overall"]["ss_ci95"]
    assert lo <= a["overall"]["SS"] <= hi


def test_crows_metric_ties_fail_and_skipped_pairs_are_excluded() -> None:
    result = pairs.metric([(1.0, 0.5), (0.2, 0.2), (0.1, 0.9), (math.nan, math.nan)])
    assert result == {"metric": round(100 * 1 / 3, 2), "n": 3, "skipped": 1, "ties": 1}


def test_pair_summaries_and_group_filter() -> None:
    items = [pairs.Pair(str(i), g, "m", "l") for i, g in enumerate(["gender", "religion", "age", "gender"])]
    scores = {"0": (1.0, 0.0), "1": (0.0, 1.0), "2": (1.0, 0.0), "3": (1.0, 1.0)}
    out = pairs.evaluate(
        items, scores, ["gender", "religion"], {"bias_bench": ("gender", "religion")}, resamples=100
    )
    assert out["gender"]["metric"] == 50.0 and out["religion"]["metric"] == 0.0
    assert out["bias_bench"]["metric"] == round(100 / 3, 2) and out["bias_bench"]["n"] == 3
    assert "age" not in out


def test_bootstrap_is_seedable_and_brackets_the_estimate() -> None:
    hits = [True] * 30 + [False] * 70
    assert bootstrap_rate(hits, 500, seed=1) == bootstrap_rate(hits, 500, seed=1)
    lo, hi = bootstrap_rate(hits, 500, seed=1)
    assert lo < 30 < hi
    lo, hi = bootstrap_macro([1.0, 0.0, 1.0, 1.0], [0, 0, 1, 1], 2, 500, seed=3)
    assert 0 <= lo <= 75 <= hi <= 100


def test_definitions_are_data_and_aliases_resolve() -> None:
    defs = all_benchmarks()
    assert {"stereoset", "crows_pairs", "biastestgpt"} <= set(defs)
    crows = defs["crows_pairs"]
    assert crows.groups[:3] == ("gender", "race-color", "religion") and len(crows.groups) == 9
    assert crows.resolve_groups(["race", "gender"]) == ["gender", "race-color"]
    assert defs["stereoset"].data_files(None) == ("stereoset/test.json",)
    assert defs["stereoset"].data_files("dev") == ("stereoset/dev.json",)
    with pytest.raises(UserError, match="unknown benchmark"):
        get_benchmarks(["seat9"])


def test_real_data_counts(data_dir) -> None:
    exs = stereoset.load_examples(
        data_dir / "stereoset" / "test.json", ["gender", "profession", "race", "religion"]
    )
    assert len(exs) == 6392 and len({e.target for e in exs}) == 242
    crows = pairs.load_crows_pairs_csv(data_dir / "crows_pairs" / "crows_pairs_anonymized.csv")
    assert len(crows) == 1508
    assert sum(p.group == "race-color" for p in crows) == 516
    btg = [
        p for f in get_benchmarks(["biastestgpt"])[0].files for p in pairs.load_biastestgpt_json(data_dir / f)
    ]
    assert len(btg) == 2356


def test_template_word_is_bias_bench_s() -> None:
    from vdata.evaluate.tasks.stereoset_intrasentence import stereoset_template_word

    assert stereoset_template_word("the poet can BLANK.", "The poet can rhyme.") == "rhyme"
    # two BLANKs: the last one's word is the template word
    assert (
        stereoset_template_word("Pensioners can be BLANK but BLANK.", "Pensioners can be slow but wise.")
        == "wise"
    )
