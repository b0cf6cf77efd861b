"""`GenOptions`, the stage's settings model: defaults from the provider registry, bounds, and error messages
that name the key and what is allowed (through core.settings, like every stage)."""

from __future__ import annotations

import pytest

from vdata.core.errors import UserError
from vdata.generate.options import GenOptions, parse_options
from vdata.generate.strategies import get_strategy
from vdata.generate.templates import builtin_template


@pytest.mark.parametrize(
    ("raw", "model", "per_request", "max_tokens"),
    [
        ({}, "smollm2-135m", 3, 160),
        ({"provider": "openai"}, "gpt-4o-mini", 10, 1500),
        ({"provider": "gemini", "model": None}, "gemini-2.0-flash", 10, 1500),
        ({"provider": "openai", "model": "m", "per_request": 4, "max_tokens": 99}, "m", 4, 99),
    ],
)
def test_unset_values_take_the_providers_defaults(
    raw: dict, model: str, per_request: int, max_tokens: int
) -> None:
    options = parse_options(raw)
    assert (options.model, options.per_request, options.max_tokens) == (model, per_request, max_tokens)


def test_request_limit_defaults_to_a_multiple_of_the_requests_needed() -> None:
    assert parse_options({"count": 25, "verify": False}).request_limit == 20 + 10 * 9  # local: 3 per request
    assert parse_options({"count": 25}).request_limit == 20 + 4 * 10 * 9  # the gate drops most: 4x as many
    assert parse_options({"count": 25, "max_requests": 7}).request_limit == 7


def test_errors_name_every_bad_key_and_the_allowed_ones() -> None:
    with pytest.raises(UserError) as info:
        parse_options({"colour": "blue", "count": 0, "rate_limit": {"rps": 1}}, "o.json")
    message = str(info.value)
    assert message.startswith("o.json: ") and message.endswith("See `vdata schema gen` for every key.")
    assert "unknown option 'colour'; allowed keys: provider, model" in message
    assert "option 'count': Input should be greater than or equal to 1 (got 0)" in message
    assert "unknown option 'rate_limit.rps'; allowed keys: rpm, tpm" in message
    with pytest.raises(UserError, match="the options file must hold a JSON object"):
        parse_options(["count", 3])
    with pytest.raises(UserError, match=r"option 'max_tokens': Input should be greater than or equal to 16"):
        parse_options({"max_tokens": 8})


def test_strategy_options_are_checked_by_the_strategy() -> None:
    options = parse_options({"strategy_options": {"n_terms": 1, "colour": "blue"}})
    with pytest.raises(UserError) as info:
        get_strategy("targeted")(options, builtin_template("targeted"))
    message = str(info.value)
    assert "option 'strategy_options.n_terms': Input should be greater than or equal to 3" in message
    assert "unknown option 'strategy_options.colour'; allowed keys: n_terms, terms_per_request" in message
    assert "strategy 'targeted'" in message


def test_options_are_stage_settings_validated_on_assignment() -> None:
    options = parse_options({})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        options.count = 0
    assert GenOptions.model_config["extra"] == "forbid"
