"""Before/after comparison: one set of rows for every benchmark, rendered by `compare_table`."""

from __future__ import annotations

import json
import math

import pytest

from vdata.evaluate.report import compare_table, comparison_rows


def results(ss: float, ss_ci: list[float], crows: float, btg: float, btg_ci: list[float], ppl: float) -> dict:
    return {
        "model": "m",
        "stereoset": {
            "split": "test",
            "intrasentence": {"gender": {"SS": ss, "LMS": 90.0, "ICAT": 70.0, "n": 5, "ss_ci95": ss_ci}},
        },
        "crows_pairs": {"gender": {"metric": crows, "n": 10, "ci95": [51.0, 63.0]}},
        "biastestgpt": {"all": {"metric": btg, "n": 20, "ci95": btg_ci}},
        "perplexity": ppl,
        "perplexity_tokens": 100,
        "provenance": {},
    }


def test_rows_cover_every_benchmark_with_interval_flags() -> None:
    before = results(62.0, [60.0, 64.0], 57.0, 70.0, [65.0, 75.0], 20.0)
    after = results(55.0, [53.0, 57.0], 55.0, math.nan, [math.nan, math.nan], 21.0)
    rows = {r["metric"]: r for r in comparison_rows(before, after)}
    assert list(rows) == [
        "StereoSet gender SS",
        "StereoSet gender LMS",
        "StereoSet gender ICAT",
        "CrowS-Pairs gender",
        "BiasTestGPT all",
        "Perplexity",
    ]
    ss = rows["StereoSet gender SS"]
    assert (ss["benchmark"], ss["label"]) == ("stereoset", "gender SS")
    assert ss["significant"] and ss["overlap"] is False and ss["delta"] == pytest.approx(-7.0)
    assert ss["bias_reduction_pct"] == pytest.approx(100 * (12 - 5) / 12)
    assert "bias_reduction_pct" not in rows["StereoSet gender LMS"]
    crows = rows["CrowS-Pairs gender"]
    assert crows["overlap"] is True and not crows["significant"]
    # NaN guard: a nan score or interval gives a nan delta and no interval verdict, never "significant"
    btg = rows["BiasTestGPT all"]
    assert math.isnan(btg["delta"]) and btg["overlap"] is None and not btg["significant"]
    assert rows["Perplexity"]["delta"] == pytest.approx(1.0) and rows["Perplexity"]["ci_before"] is None
    json.dumps(list(rows.values()))


def test_compare_table_renders_the_rows() -> None:
    before = results(62.0, [60.0, 64.0], 57.0, 70.0, [65.0, 75.0], 20.0)
    after = results(55.0, [53.0, 57.0], 55.0, math.nan, [math.nan, math.nan], 21.0)
    table = compare_table(before, after)
    assert (
        "| stereoset | gender SS | 62.00 [60.00, 64.00] | 55.00 [53.00, 57.00] | -7.00 | **no overlap** * |"
        in table
    )
    assert (
        "| crows_pairs | gender metric | 57.00 [51.00, 63.00] | 55.00 [51.00, 63.00] | -2.00 | overlap |"
        in table
    )
    assert "| biastestgpt | all metric | 70.00 [65.00, 75.00] | – [–, –] | – | – |" in table
    assert "| capability | perplexity | 20.00  | 21.00  | +1.00 | – |" in table
    assert "`*` 1 change(s)" in table


def test_only_numbers_both_files_hold_are_compared() -> None:
    before = results(62.0, [60.0, 64.0], 57.0, 70.0, [65.0, 75.0], 20.0)
    after = {"model": "m2", "crows_pairs": before["crows_pairs"]}
    assert [r["metric"] for r in comparison_rows(before, after)] == ["CrowS-Pairs gender"]
