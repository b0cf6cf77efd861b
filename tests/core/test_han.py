"""The one parser of Han et al. 2024's two row forms, on real rows of the released files (known answers)."""

from __future__ import annotations

import json
from pathlib import Path

from vdata.core.han import HanSentence, parse_han_prompt, parse_han_row, parse_han_triple

GENDER = "han2024-synthetic/Targeted_Debiasing/Gender"


def _rows(data_dir: Path, name: str) -> list[object]:
    return json.loads((data_dir / GENDER / name).read_text(encoding="utf-8"))


def test_real_prompt_rows(data_dir: Path) -> None:
    rows = _rows(data_dir, "Synthetic_Gender_1.json")
    # {"prompt": "the {} was remarkably ", "subject": "woman", "target_new": {"str": "stoic"}}
    assert parse_han_prompt(rows[0]) == HanSentence("the woman was remarkably stoic", "woman", "stoic")
    # {"prompt": "{} is", "subject": "girl", ...}: no trailing space in the prompt, still one space.
    assert parse_han_prompt(rows[103]) == HanSentence("girl is courageous", "girl", "courageous")
    # {"prompt": "best men at weddings are often more ", "subject": "best man", ...}: no placeholder.
    assert parse_han_prompt(_rows(data_dir, "Synthetic_Gender_2.json")[133]) is None


def test_real_raw_rows(data_dir: Path) -> None:
    rows = _rows(data_dir, "Synthetic_Gender_1S.json")
    assert parse_han_triple(rows[0]) == HanSentence("The woman was remarkably stoic.", "woman", "stoic")
    assert parse_han_row(rows[103]) == HanSentence(
        "No one could deny the young girl's exceptional courage in the face of adversity.",
        "girl",
        "courageous",
    )


def test_every_placeholder_is_filled_and_whitespace_normalised() -> None:
    row = {"prompt": " the {} and the  {} were ", "subject": "woman", "target_new": {"str": " stoic "}}
    assert parse_han_prompt(row) == HanSentence("the woman and the woman were stoic", "woman", "stoic")
    assert parse_han_prompt({**row, "target_new": "calm"}) is not None  # a bare string attribute


def test_incomplete_rows() -> None:
    good = {"prompt": "the {} was ", "subject": "man", "target_new": {"str": "kind"}}
    assert parse_han_prompt({**good, "target_new": {"str": "  "}}) is None
    assert parse_han_prompt({**good, "subject": ""}) is None
    assert parse_han_prompt({**good, "subject": 3}) is None
    assert parse_han_prompt({**good, "prompt": "no placeholder "}) is None
    assert parse_han_triple(["  ", "man", "kind"]) is None
    assert parse_han_triple([1, 2, 3]) is None
    assert parse_han_row("a string") is None
