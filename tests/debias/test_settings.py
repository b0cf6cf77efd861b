"""`DebiasSettings`: defaults, bounds and choices declared once; the CLI's flags map onto them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.debias.cli import register, settings_values
from vdata.debias.settings import NOT_FINGERPRINTED, DebiasOptions, DebiasSettings

REQUIRED = {"model": "smollm2-135m", "data": ["a.json"], "out": "out"}


def check(**values: Any) -> DebiasSettings:
    return validate_settings(DebiasSettings, {**REQUIRED, **values}, source="vdata debias", prefix="--")


def test_defaults_and_learning_rate_per_method() -> None:
    s = check()
    # The setting measured best on both benchmarks in every category (docs/results.md).
    assert (s.method, s.objective, s.cda_mode, s.epochs, s.batch_size, s.max_length) == (
        "bottleneck",
        "attribute",
        "cased",
        1,
        16,
        40,
    )
    assert (s.balance_groups, s.group_kl, s.reduction_factor, s.learning_rate()) == (0, 0.0, 16, 3e-4)
    assert [check(method=m).learning_rate() for m in ("lora", "bottleneck", "full")] == [2e-4, 3e-4, 2e-5]
    assert check(method="full", lr=1e-3).learning_rate() == 1e-3


def test_comma_separated_lists_as_the_flags_give_them() -> None:
    s = check(cda="gender, race", mitigation="token,loss")
    assert s.cda == ["gender", "race"] and s.mitigation == ["token", "loss"]
    assert check(cda=["religion"]).cda == ["religion"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": "prefix"}, "option '--method': Input should be 'lora', 'bottleneck' or 'full'"),
        ({"objective": "words"}, "option '--objective'"),
        ({"cda_mode": "exact"}, "option '--cda-mode': Input should be 'bias-bench' or 'cased'"),
        ({"mitigation": "token,magic"}, "unknown --mitigation magic; choose from token, mask, loss"),
        ({"mix_corpus": "c.txt", "bias_ratio": 1.5}, "must be between 0 and 1 (the synthetic share)"),
        ({"bias_ratio": 0.5}, "needs --mix-corpus FILE"),
        ({"mix_corpus": "c.txt"}, "option '--mix-corpus': needs --objective sentence"),
        ({"method": "bottleneck", "merge": True}, "option '--merge': applies to LoRA only"),
        ({"epochs": 0}, "option '--epochs': Input should be greater than or equal to 1"),
        ({"batch_size": 0}, "option '--batch-size'"),
        ({"grad_accum": 0}, "option '--grad-accum'"),
        ({"max_length": 3}, "option '--max-length': Input should be greater than or equal to 4"),
        ({"val_fraction": 1.0}, "option '--val-fraction': Input should be less than 1"),
        ({"lr": 0}, "option '--lr': Input should be greater than 0"),
        ({"data": []}, "option '--data'"),
        ({"epoch": 2}, "unknown option '--epoch'"),
    ],
)
def test_bad_values_name_the_option(values: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        check(**values)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(UserError) as e:
        check(epochs=0, method="x")
    assert "'--epochs'" in str(e.value) and "'--method'" in str(e.value)


def test_options_without_model_data_out_for_a_pipeline_section() -> None:
    options = validate_settings(DebiasOptions, {"method": "bottleneck", "cda": "gender"}, source="debias")
    assert options.method == "bottleneck" and options.cda == ["gender"]
    with pytest.raises(UserError, match=re.escape("unknown option 'debias.model'")):
        validate_settings(DebiasOptions, {"model": "x"}, source="pipeline.yaml", prefix="debias.")


def test_fingerprint_fields_leave_out_run_controls_and_use_the_effective_lr() -> None:
    fields = check(stop_after_steps=3, data_dir="/d").fingerprint_fields()
    assert not set(NOT_FINGERPRINTED) & set(fields)
    assert fields["lr"] == 3e-4 and fields["model"] == "smollm2-135m" and fields["data"] == ["a.json"]
    assert check(out="elsewhere").fingerprint_fields() == check().fingerprint_fields()


def test_settings_added_later_are_fingerprinted_only_when_set() -> None:
    # A run made before `balance_terms` existed trained as an unset one does: same fingerprint.
    assert "balance_terms" not in check(balance_groups=1).fingerprint_fields()
    with_terms = check(balance_groups=1, balance_terms="white,Caucasian").fingerprint_fields()
    assert with_terms["balance_terms"] == ["white", "Caucasian"]
    assert with_terms != check(balance_groups=1).fingerprint_fields()


def test_flags_map_onto_settings_unchanged() -> None:
    flags = {
        "model": "m",
        "data": [Path("a.json")],
        "out": Path("o"),
        "cda": None,
        "epochs": 3,
        "quiet": True,
    }
    assert settings_values(flags) == {"model": "m", "data": ["a.json"], "out": "o", "epochs": 3}


def test_cli_defaults_and_help_come_from_the_settings() -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `debias` a subcommand
    result = CliRunner().invoke(app, ["debias", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    no_flag = {"model", "data", "out", "weight_decay"}  # arguments, --out, and a library-only setting
    for name, field in DebiasSettings.model_fields.items():
        if name not in no_flag:
            assert "--" + name.replace("_", "-") in result.output
            assert (field.description or "")[:30] in result.output
    assert "Passes over the training data. [default: 1]" in result.output


def test_cli_refuses_bad_flags_before_loading_anything(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    out = tmp_path / "o"
    result = CliRunner().invoke(
        app, ["debias", "m", str(tmp_path / "a.json"), "--out", str(out), "--cda-mode", "exact"]
    )
    assert isinstance(result.exception, UserError) and "'--cda-mode'" in str(result.exception)
    assert not out.exists()
