"""Hygiene checks and group balance on hand-made sentences with known answers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from datasketch import MinHash

from vdata.audit.groups import AttributeCoverage, GroupStats
from vdata.audit.hygiene import (
    BenchmarkIndex,
    HashSet64,
    NearDuplicateIndex,
    RefusalMatcher,
    language_flag,
    load_benchmark_index,
    malformed_reason,
)
from vdata.audit.metrics import normalised_entropy
from vdata.core.hygiene import tokenize
from vdata.core.lexicon import build_lexicon


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("As an AI language model, I cannot generate stereotypes.", "refusals/as-an-ai"),
        ("I'm sorry, but I can't help with that request.", "refusals/i-cannot"),
        ("Sure! Here are 10 anti-stereotypical sentences:", "meta/here-are"),
        ("I hope these help with your dataset.", "meta/hope-helps"),
        ("S1: The nurse fixed the engine.", "meta/format-marker"),
        ("The woman is a brilliant engineer.", None),
        ("I cannot believe how kind the old man was.", None),
        ("I can't wait to meet the new engineer.", None),
        ("I cannot generate sentences that single out a religion.", "refusals/i-cannot"),
    ],
)
def test_refusals_and_meta_text(text: str, expected: str | None) -> None:
    assert RefusalMatcher().match(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Women are", "fewer than 3 words"),
        ("The {} was remarkably brave.", "unfilled template placeholder"),
        ("The nurse was BLANK.", "unfilled template placeholder"),
        ("Caf\ufffd owners are friendly.", "control or replacement characters (broken encoding)"),
        ("x" * 4001, "longer than 4000 characters"),
        ("The engineer fixed the bridge.", None),
    ],
)
def test_malformed_text(text: str, reason: str | None) -> None:
    assert malformed_reason(text, tokenize(text)) == reason


def test_language_flag() -> None:
    de = "Die Frau ist eine sehr gute Ingenieurin und sie arbeitet mit dem Team."
    assert language_flag(de, tokenize(de), "en") == "de"
    en = "The woman is a very good engineer and she works with the team."
    assert language_flag(en, tokenize(en), "en") is None
    zh = "这位女士是一名优秀的工程师。"
    assert language_flag(zh, tokenize(zh), "en") == "non-latin"
    assert language_flag(de, tokenize(de), "de") is None


def test_benchmark_index_long_ngrams_and_short_sentences() -> None:
    index = BenchmarkIndex(n=8)
    index.add_sentence("He couldn't figure out the issue with the rope, but he tried hard.", "crows_pairs")
    index.add_sentence("The chess player was hispanic.", "stereoset")
    leak = "Yesterday he couldn't figure out the issue with the rope at all"
    assert index.match(tokenize(leak)) == "crows_pairs"
    assert index.match(tokenize("Everyone knew the chess player was hispanic and proud.")) == "stereoset"
    assert index.match(tokenize("The chess player was brilliant.")) is None


def test_real_benchmark_index_finds_copied_sentences(data_dir) -> None:
    index = load_benchmark_index(data_dir)
    assert index.sizes["stereoset"] == 3 * (6392 + 2106)
    assert index.sizes["crows_pairs"] == 2 * 1508
    copied = "We can't go to that one in a Mexican neighborhood. You might be forced to buy drugs."
    assert index.match(tokenize(copied)) == "crows_pairs"
    assert index.match(tokenize("Everyone said the actor was completely sane, oddly.")) == "stereoset"
    assert index.match(tokenize("The retired welder taught her granddaughter to weld.")) is None


def test_minhash_signatures_equal_datasketch() -> None:
    near = NearDuplicateIndex(num_perm=64)
    sents = [tokenize("The quiet grandmother repaired the old tractor engine before dawn."), ["one"], []]
    sigs = near.signatures(sents)
    for toks, sig in zip(sents, sigs, strict=True):
        ref = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=zlib.crc32)
        ref.update_batch(near.shingles(toks) or [b""])
        assert np.array_equal(ref.hashvalues, sig)


def test_near_duplicates_found_and_distinct_sentences_not() -> None:
    near = NearDuplicateIndex(threshold=0.8)
    base = (
        "the young woman from the village became the first engineer to design the new bridge over the river"
    )
    variant = base.replace("river", "stream")  # last word changed: Jaccard of 3-shingles 16/18
    other = (
        "a retired teacher volunteers at the community garden every saturday morning with his grandchildren"
    )
    flags = near.check_and_add([base.split(), other.split(), variant.split(), (base + " today").split()])
    assert flags == [False, False, True, True]


def test_skewed_group_distribution() -> None:
    lex = build_lexicon({"gender": [("man", "woman"), ("he", "she")]})
    stats = GroupStats(lex, min_attribute_count=3)
    sentences = ["The man is a brilliant engineer."] * 9 + ["The woman is a caring nurse."]
    for s in sentences:
        stats.add(tokenize(s), "")
    report = stats.report()["categories"]["gender"]
    assert report["group_counts"] == {"male": 9, "female": 1, "nonbinary": 0}
    assert report["entropy"] == pytest.approx(normalised_entropy([9, 1], 3))
    assert report["groups_present"] == 2 and report["records"] == 10
    assert report["term_counts"] == {"man": 9, "woman": 1}
    skew = report["attribute_skew"]
    # "brilliant" and "engineer" occur 9 times, only with male; the base share of male is 0.9
    top = {(r["attribute"], r["group"]): r for r in skew["top"]}
    assert top[("brilliant", "male")]["share"] == 1.0
    assert top[("brilliant", "male")]["lift"] == pytest.approx(1 / 0.9)
    assert skew["tvd"] == pytest.approx(0.1)


def test_intersections_and_explicit_attribute() -> None:
    lex = build_lexicon({})
    stats = GroupStats(lex)
    stats.add(tokenize("The Black woman is a pilot."), "pilot")
    stats.add(tokenize("The Asian man is a nurse."), "")
    stats.add(tokenize("The Asian woman paints."), "")
    inter = stats.report()["intersections"]["gender x race"]
    rows, cols = inter["rows"], inter["columns"]
    cell = {(rows[i], cols[j]): v for i, row in enumerate(inter["counts"]) for j, v in enumerate(row)}
    assert cell[("female", "black")] == 1 and cell[("male", "asian")] == 1 and cell[("female", "asian")] == 1
    assert inter["cells_covered"] == 3 and inter["cells"] == len(rows) * len(cols)
    assert stats.pairings[("gender", "female", "pilot")] == 1


def test_user_lexicon_extends_categories(tmp_path) -> None:
    f = tmp_path / "lex.yaml"
    f.write_text("category: occupation\ngroups:\n  care: [nurse, nanny]\n  tech: [engineer, programmer]\n")
    lex = build_lexicon({}, [f])
    assert ("occupation", "tech", "engineer") in lex.match(tokenize("The engineer laughed."))
    bad = tmp_path / "bad.yaml"
    bad.write_text("category: x\ngroups: [1, 2]\n")
    from vdata.core.errors import UserError

    with pytest.raises(UserError, match="groups"):
        build_lexicon({}, [bad])


def test_attribute_coverage_evenness() -> None:
    cov = AttributeCoverage()
    for length in ["short"] * 3 + ["long"]:
        for style in ("formal", "casual"):
            cov.add({"length": length, "style": style})
    cov.add(None)
    rep = cov.report()
    assert rep["records"] == 8
    assert rep["keys"]["length"]["counts"] == {"short": 6, "long": 2}
    assert rep["keys"]["style"]["evenness"] == pytest.approx(1.0)
    assert rep["combinations_seen"] == 4 and rep["combinations_possible"] == 4


def test_near_duplicate_index_gives_same_answers_after_compaction() -> None:
    sents = [
        f"sentence number {i} about the brave {i % 7} nurse who fixed engines".split() for i in range(300)
    ]
    sents += [[*s, "again"] for s in sents[:50]]  # near duplicates of earlier ones
    plain = NearDuplicateIndex()
    compacting = NearDuplicateIndex()
    for band_set in compacting.band_sets:
        band_set.merge_at = 10  # move band hashes into the sorted arrays after every small batch
    expected = plain.check_and_add(sents)
    got = [flag for i in range(0, len(sents), 16) for flag in compacting.check_and_add(sents[i : i + 16])]
    assert got == expected
    assert sum(got[300:]) >= 45
    assert all(len(b.sorted) for b in compacting.band_sets)


def test_hash_set_64() -> None:
    hs = HashSet64(merge_at=3)
    assert hs.check_and_add(np.array([5, 7, 5, 9], dtype=np.uint64)).tolist() == [False, False, True, False]
    assert len(hs.sorted) == 3 and not hs.recent  # folded into the sorted array
    assert hs.check_and_add(np.array([9, 1, 1, 2**64 - 1], dtype=np.uint64)).tolist() == [
        True,
        False,
        True,
        False,
    ]
    assert len(hs) == 5
