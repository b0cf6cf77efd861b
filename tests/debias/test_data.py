"""Reading training data (records, Han et al.'s two forms), CDA on examples, and corpus mixing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.cda import load_word_lists
from vdata.core.errors import UserError
from vdata.core.io import write_records
from vdata.core.records import Record
from vdata.debias.data import Example, apply_cda, mix, read_corpus, read_examples, split_heldout

HAN_GENDER = "han2024-synthetic/Targeted_Debiasing/Gender"


def test_han_raw_form(data_dir: Path) -> None:
    examples = read_examples(data_dir / HAN_GENDER / "Synthetic_Gender_1S.json")
    assert len(examples) == 500
    first = examples[0]
    assert (first.text, first.target, first.attribute, first.synthetic) == (
        "The woman was remarkably stoic.",
        "woman",
        "stoic",
        True,
    )
    assert first.text[slice(*first.attribute_span())] == "stoic"


def test_han_prompt_form_puts_attribute_after_prefix(data_dir: Path) -> None:
    examples = read_examples(data_dir / HAN_GENDER / "Synthetic_Gender_1.json")
    assert len(examples) == 500
    first = examples[0]
    assert first.text == "the woman was remarkably stoic"
    assert first.attribute_span() == (len("the woman was remarkably "), len(first.text))


def test_vdata_records_in_every_format(tmp_path: Path) -> None:
    recs = [Record(text="The engineer is a woman who loves poetry.", target="woman", attribute="poetry")]
    for suffix in ("jsonl", "csv", "parquet"):
        path = tmp_path / f"r.{suffix}"
        write_records(recs, path)
        (ex,) = read_examples(path)
        assert (ex.text, ex.target, ex.attribute) == (recs[0].text, "woman", "poetry")


def test_unusable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"foo": 1}, [1, 2]]))
    assert read_examples(bad) == []
    notlist = tmp_path / "obj.json"
    notlist.write_text("{}")
    with pytest.raises(UserError, match="expected a JSON list"):
        read_examples(notlist)
    with pytest.raises(UserError, match="does not exist"):
        read_examples(tmp_path / "missing.jsonl")


def test_cda_is_two_sided_and_swaps_targets(data_dir: Path) -> None:
    lists = load_word_lists(data_dir=data_dir)
    examples = [
        Example("The woman was remarkably stoic.", "woman", "stoic"),
        Example("Engineers solve problems.", "", ""),
    ]
    out = apply_cda(examples, ["gender"], lists, seed=0, mode="cased")
    assert [x.text for x in out] == [
        "The woman was remarkably stoic.",
        "The man was remarkably stoic.",
        "Engineers solve problems.",
    ]
    assert out[1].target == "man" and out[1].attribute == "stoic"


def test_cda_keeps_unswapped_examples_and_puts_each_original_first() -> None:
    # Two-sided CDA as vdata trains it (was core.cda.two_sided_cda's default, now only `apply_cda`).
    lists = {"gender": [("he", "she"), ("man", "woman")]}
    out = apply_cda([Example("he runs"), Example("the sky")], ["gender"], lists, seed=0, mode="cased")
    assert [x.text for x in out] == ["he runs", "she runs", "the sky"]
    assert [x.source for x in out] == ["", "+cda0", ""]


def test_mix_ratio_and_errors() -> None:
    syn = [Example(f"s{i}") for i in range(100)]
    orig = [Example(f"o{i}", synthetic=False) for i in range(100)]
    mixed = mix(syn, orig, 0.2, seed=0)
    n_syn = sum(x.synthetic for x in mixed)
    assert (n_syn, len(mixed) - n_syn) == (25, 100)
    mixed = mix(syn, orig, 0.8, seed=0)
    assert (sum(x.synthetic for x in mixed), sum(not x.synthetic for x in mixed)) == (100, 25)
    assert all(x.synthetic for x in mix(syn, orig, 1.0, seed=0))
    assert not any(x.synthetic for x in mix(syn, orig, 0.0, seed=0))
    assert len(mix(syn, orig, None, seed=0)) == 200
    with pytest.raises(UserError, match="between 0 and 1"):
        mix(syn, orig, 1.5, seed=0)


def test_corpus_lines_and_split(tmp_path: Path) -> None:
    corpus = tmp_path / "wiki.txt"
    corpus.write_text("First line.\n\n  Second line.  \n")
    lines = read_corpus(corpus)
    assert [(x.text, x.synthetic) for x in lines] == [("First line.", False), ("Second line.", False)]
    with pytest.raises(UserError, match=r"corpus file .* does not exist"):
        read_corpus(tmp_path / "nope.txt")
    train, val = split_heldout([Example(str(i)) for i in range(20)], 0.1, seed=0)
    assert len(train) == 18 and len(val) == 2 and not {x.text for x in train} & {x.text for x in val}
