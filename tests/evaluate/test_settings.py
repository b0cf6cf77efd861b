"""`EvalSettings`: declared once, bounds and choices checked with messages naming the option, and the
CLI's defaults are the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.evaluate.settings import EvalSettings


def bad(data: dict[str, Any], *needles: str) -> None:
    with pytest.raises(UserError) as err:
        validate_settings(EvalSettings, data, source="vdata eval")
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_defaults_and_comma_lists() -> None:
    s = EvalSettings()
    assert s.benchmarks == ["stereoset", "crows_pairs"] and s.split == "test" and s.batch_size == 64
    assert s.resamples == 1000 and s.seed == 0 and s.dtype == "float32" and s.limit is None
    s = EvalSettings.model_validate({"benchmarks": "stereoset, crows_pairs", "bias_types": "gender,race"})
    assert s.benchmarks == ["stereoset", "crows_pairs"] and s.bias_types == ["gender", "race"]
    assert EvalSettings.model_validate({"bias_types": ""}).bias_types is None


def test_bounds_and_choices_name_the_option() -> None:
    bad({"split": "train"}, "option 'split'", "--split must be test or dev")
    bad({"limit": 0}, "option 'limit'", "greater than or equal to 1")
    bad({"batch_size": 0}, "option 'batch_size'")
    bad({"resamples": 0}, "option 'resamples'")
    bad({"seed": -1}, "option 'seed'")
    bad({"dtype": "int8"}, "option 'dtype'", "float32")
    bad({"batchsize": 8}, "unknown option 'batchsize'", "batch_size")


def test_benchmarks_and_bias_types_must_exist() -> None:
    bad({"benchmarks": "stereoset,seat9"}, "unknown benchmark(s) seat9", "choose from")
    bad({"benchmarks": ""}, "--benchmarks is empty")
    bad(
        {"benchmarks": "crows_pairs", "bias_types": "profession"},
        "option 'bias_types'",
        "exists in crows_pairs",
    )
    # race is CrowS-Pairs' race-color and a StereoSet domain: fine for both
    assert EvalSettings(benchmarks="stereoset,crows_pairs", bias_types="race").bias_types == ["race"]


def test_cli_defaults_are_the_settings_defaults() -> None:
    import typer
    from typer.main import get_command

    from vdata.evaluate.cli import register

    app = typer.Typer()
    register(app)
    params = {p.name: p.default for p in get_command(app).params}
    defaults = EvalSettings()
    assert params["benchmarks"] == ",".join(defaults.benchmarks)
    for name in ("split", "batch_size", "seed", "resamples", "dtype"):
        assert params[name] == getattr(defaults, name), name


def test_paths_are_paths(tmp_path: Path) -> None:
    s = EvalSettings(data_dir=str(tmp_path), ppl_text=str(tmp_path / "t.txt"))
    assert s.data_dir == tmp_path and isinstance(s.ppl_text, Path)
