"""ServerSettings: one typed model; its bounds, error messages, the strategies setting, the worker hand-off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vdata.core.errors import UserError
from vdata.server.settings import DEFAULT_STRATEGIES, ServerSettings


def test_defaults_keep_the_five_builtin_strategies() -> None:
    settings = ServerSettings(db_url="sqlite:///x.sqlite3")
    assert settings.strategies == ("targeted", "general", "attributed", "simple", "loss_guided")
    assert settings.strategies == DEFAULT_STRATEGIES


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_page": -1}, "max_page"),
        ({"query_timeout_s": 0.0}, "query_timeout_s"),
        ({"put_rate": -2.0}, "put_rate"),
        ({"put_burst": 0}, "put_burst"),
        ({"strategies": ()}, "strategies"),
        ({"strategies": ("",)}, "strategies"),
    ],
)
def test_out_of_bounds_values_are_named(
    overrides: dict[str, object], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VDATA_DB", "VDATA_BATCH_SIZE", "VDATA_PUT_RATE", "VDATA_MODERATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match=rf"server settings: option '{named}(\.0)?'") as caught:
        ServerSettings.from_env("sqlite:///x.sqlite3", **overrides)
    assert "vdata serve" in str(caught.value)


def test_environment_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDATA_BATCH_SIZE", "250")
    monkeypatch.setenv("VDATA_PUT_RATE", "2.5")
    settings = ServerSettings.from_env("sqlite:///x.sqlite3", batch_size=None, strategies=("mine",))
    assert (settings.batch_size, settings.put_rate, settings.strategies) == (250, 2.5, ("mine",))
    assert ServerSettings.from_env("sqlite:///x.sqlite3", batch_size=10).batch_size == 10  # option wins
    monkeypatch.setenv("VDATA_BATCH_SIZE", "many")
    with pytest.raises(UserError, match="VDATA_BATCH_SIZE must be a number"):
        ServerSettings.from_env("sqlite:///x.sqlite3")


def test_unknown_keys_and_assignment_are_refused() -> None:
    with pytest.raises(ValidationError):
        ServerSettings(db_url="sqlite:///x.sqlite3", batch_sise=5)  # type: ignore[call-arg]
    settings = ServerSettings(db_url="sqlite:///x.sqlite3")
    with pytest.raises(ValidationError):
        settings.batch_size = 5  # type: ignore[misc]


def test_settings_survive_the_hand_off_to_workers() -> None:
    settings = ServerSettings(db_url="sqlite:///x.sqlite3", strategies=("a", "b"), put_rate=0.5)
    assert ServerSettings.model_validate_json(settings.model_dump_json()) == settings
