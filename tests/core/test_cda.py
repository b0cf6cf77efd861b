from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from vdata.core.cda import counterfactuals, load_word_lists, swap_map, swap_text
from vdata.core.errors import UserError

WL = {
    "gender": [("he", "she"), ("man", "woman"), ("men", "women"), ("his", "her"), ("him", "her")],
    "race": [("black", "caucasian", "asian"), ("black", "white", "asian")],
}


def test_gender_swaps_both_directions() -> None:
    assert swap_text("he is a man", "gender", WL) == "she is a woman"
    assert swap_text("she is a woman", "gender", WL) == "he is a man"


def test_last_tuple_wins_like_bias_bench() -> None:
    # "her" occurs in (his, her) and (him, her): bias-bench's loop keeps the last match.
    assert swap_text("her", "gender", WL) == "him"


def test_punctuation_bias_bench_mode() -> None:
    assert swap_text("ask the man.", "gender", WL, mode="bias-bench") == "ask the woman."
    assert swap_text("ask the man,", "gender", WL, mode="bias-bench") == "ask the woman,"
    # bias-bench matches one trailing mark only, and never a quoted or capitalised token.
    assert swap_text('"man"', "gender", WL, mode="bias-bench") is None
    assert swap_text("Man", "gender", WL, mode="bias-bench") is None


def test_cased_mode_preserves_case_and_possessive() -> None:
    assert swap_text("Men can be nurses.", "gender", WL) == "Women can be nurses."
    assert swap_text("The MAN's coat", "gender", WL) == "The WOMAN's coat"
    assert swap_text('She said "he!"', "gender", WL) == 'He said "she!"'


def test_no_swap_returns_none() -> None:
    assert swap_text("the sky is blue", "gender", WL) is None


def test_ternary_never_maps_to_itself_and_is_seeded() -> None:
    for seed in range(20):
        m = swap_map(WL["race"], random.Random(seed))
        assert m["white"] in {"black", "asian"}
        assert m["caucasian"] in {"black", "asian"}
    assert swap_text("a black man", "race", WL, 3) == swap_text("a black man", "race", WL, 3)


def test_counterfactuals_combined_for_intersectional() -> None:
    cfs = counterfactuals("the black man", ["race", "gender"], WL, seed=1)
    assert "the black woman" in cfs
    assert any(c.startswith("the ") and "black" not in c and "woman" in c for c in cfs)


def test_real_word_lists(data_dir: Path) -> None:
    wl = load_word_lists()
    assert len(wl["gender"]) == 57 and len(wl["race"]) == 6 and len(wl["religion"]) == 6
    assert swap_text("The rabbi met the imam.", "religion", wl) is not None


@pytest.mark.parametrize(
    "content",
    [
        '{"gender": [["he"]]}',
        '{"gender": "he,she"}',
        '[["he", "she"]]',
        '{"race": [["a","b","c"],["d","e"]]}',
    ],
)
def test_bad_word_lists_shape(tmp_path: Path, content: str) -> None:
    p = tmp_path / "w.json"
    p.write_text(content)
    with pytest.raises(UserError):
        load_word_lists(path=p)


def test_missing_word_list_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_word_lists(path=tmp_path / "nope.json")
    (tmp_path / "x.json").write_text(json.dumps({"gender": [["he", "she"]]}))
    with pytest.raises(UserError, match="no CDA word list"):
        swap_text("he", "race", load_word_lists(path=tmp_path / "x.json"))
