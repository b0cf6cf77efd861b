"""`AuditSettings`: bounds and choices declared once, the errors they give, and the CLI mapped onto them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_args

import pytest
from typer.testing import CliRunner

from vdata.audit.settings import AuditSettings, Language
from vdata.core.errors import UserError
from vdata.core.hygiene import stopwords
from vdata.core.settings import validate_settings


def _validate(**values: object) -> AuditSettings:
    return validate_settings(AuditSettings, {"data": ["d.jsonl"], **values}, source="vdata audit")


def test_defaults() -> None:
    s = _validate()
    assert s.data == [Path("d.jsonl")] and s.out == Path("audit-report")
    assert (s.sample, s.embed_sample, s.direction_sample, s.batch_size) == (1000, 1000, 200, 16)
    assert (s.seed, s.near_threshold, s.language) == (0, 0.8, "en")
    assert s.benchmark_overlap and s.plots and s.filter is None and s.target_model is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sample", 1, "option 'sample': Input should be greater than or equal to 2"),
        ("embed_sample", -1, "option 'embed_sample': Input should be greater than or equal to 0"),
        ("direction_sample", 0, "option 'direction_sample': Input should be greater than or equal to 1"),
        ("batch_size", 0, "option 'batch_size': Input should be greater than or equal to 1"),
        ("near_threshold", 0.05, "option 'near_threshold': Input should be greater than or equal to 0.1"),
        ("near_threshold", 1.5, "option 'near_threshold': Input should be less than or equal to 1"),
        ("language", "xx", "option 'language': Input should be 'en', 'de'"),
        ("sampel", 5, "unknown option 'sampel'; allowed keys: data, out, compare"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(UserError, match=r"^vdata audit: ") as err:
        _validate(**{key: value})
    assert message in str(err.value)


def test_no_data_is_an_error() -> None:
    with pytest.raises(UserError, match="option 'data'"):
        validate_settings(AuditSettings, {"data": []}, source="vdata audit")


def test_languages_are_the_stopword_lists() -> None:
    assert set(get_args(Language)) == set(stopwords())


def test_datasets_get_unique_labels(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text("")
    s = AuditSettings(data=[a], compare=[str(a), f"other={a},{a}", f"{a},{tmp_path / 'b.txt'}"])
    assert s.datasets() == [
        ("a", [a]),
        ("a-2", [a]),
        ("other", [a, a]),
        (tmp_path.name, [a, tmp_path / "b.txt"]),
    ]
    with pytest.raises(UserError, match="--compare"):
        AuditSettings(data=[a], compare=["x="]).datasets()


def test_cli_help_shows_the_settings_defaults() -> None:
    from vdata.cli import app

    res = CliRunner().invoke(app, ["audit", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "Seeded sample size for self-BLEU." in res.output and "[default: 1000]" in res.output
    assert "--no-benchmark-overlap" in res.output and "--quiet" in res.output


def test_cli_bad_value_exits_2_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vdata.cli import main

    data = tmp_path / "d.txt"
    data.write_text("The nurse is a man.\n")
    argv = ["vdata", "audit", str(data), "--out", str(tmp_path / "r"), "--near-threshold", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # Rich wraps the message
    assert "near_threshold" in err and "less than or equal to 1" in err
    assert not (tmp_path / "r").exists()
