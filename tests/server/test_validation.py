"""One record validator (core.records) behind `read_records`, `vdata push` and PUT /v1/records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.core.records import FIELD_LIMITS, check_publishable, file_row_values, parse_record
from vdata.server.client import validate_rows

from .conftest import sample_records, start_server


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("just a string", "not a JSON object"),
        ({"text": ""}, "text: String should have at least 1 character"),
        ({"text": "   "}, "text: Value error, text is blank"),
        ({"no_text": "x"}, "unknown field(s) no_text; allowed: id, text,"),
        ({"text": "fine", "params": "not a dict"}, "params: Input should be a valid dictionary"),
        ({"text": 12345}, "text: Input should be a valid string"),
    ],
)
def test_parse_record_names_the_field(row: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_record(row)
    assert reason in str(caught.value)


def test_null_means_default_and_the_id_is_recomputed() -> None:
    record = parse_record({"text": "Nurses can be men.", "id": "0000000000000000", "attributes": None})
    assert record.id != "0000000000000000" and record.attributes is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"text": "nul\x00inside"}, "text: contains a NUL character"),
        ({"provider": "p" * (FIELD_LIMITS["provider"] + 1)}, "provider: longer than 200 characters"),
        ({"model": "m\x00"}, "model: contains a NUL character"),
        ({"category": "zodiac"}, "unknown category 'zodiac'"),
    ],
)
def test_publishable_rules(change: dict[str, str], reason: str) -> None:
    record = parse_record({"text": "Nurses can be men.", **change})
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        check_publishable(record)


def test_publishable_canonical_category_and_strategies() -> None:
    record = check_publishable(parse_record({"text": "Fine.", "category": "Gender + RACE"}))
    assert record.category == "gender+race"
    made_up = parse_record({"text": "Fine.", "strategy": "made-up"})
    assert check_publishable(made_up) is made_up  # no list given: the client leaves this to the server
    with pytest.raises(ValueError, match="strategy: unknown 'made-up'; allowed: a, b"):
        check_publishable(made_up, strategies=("a", "b"))


def test_file_rows_drop_empty_cells_and_decode_json_text() -> None:
    assert file_row_values({"text": "x", "model": "", "params": '{"t": 1}', "attributes": None}) == {
        "text": "x",
        "params": {"t": 1},
    }
    with pytest.raises(ValueError, match="attributes: not valid JSON"):
        file_row_values({"text": "x", "attributes": "{oops"})


def test_the_three_readers_give_the_same_reasons(tmp_path: Path) -> None:
    rows = [{"text": "Fine sentence."}, {"text": "Bad params.", "params": "[1, 2"}]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(UserError, match=r"r.jsonl:2: not a valid vdata record: params: not valid JSON"):
        read_records(path)
    records, rejected = validate_rows(path)
    assert [r.text for r in records] == ["Fine sentence."]
    assert rejected == [(f"{path}:2", "params: not valid JSON (Expecting ',' delimiter)")]


def test_read_records_ignores_columns_that_are_not_record_fields(tmp_path: Path) -> None:
    path = tmp_path / "pulled.jsonl"
    path.write_text(json.dumps({"text": "Pulled.", "contributor": "ann"}) + "\n", encoding="utf-8")
    assert [r.text for r in read_records(path)] == ["Pulled."]
    assert "unknown field(s) contributor" in validate_rows(path)[1][0][1]  # push refuses to drop data


def test_server_strategies_come_from_its_settings(tmp_path: Path) -> None:
    threaded, server = start_server(f"sqlite:///{tmp_path / 's.sqlite3'}", strategies=("custom",))
    try:
        custom = {**sample_records(1)[0], "strategy": "custom"}
        assert server.http.put("/v1/records", json=[custom]).status_code == 200
        builtin = sample_records(1, "Builtin")  # strategy "targeted", not allowed on this server
        response = server.http.put("/v1/records", json=builtin)
        assert response.status_code == 422
        assert "strategy: unknown 'targeted'; allowed: custom" in response.json()["errors"][0]["reason"]
    finally:
        server.close()
        threaded.__exit__(None, None, None)
