"""Phase 1 of a run: read and check every input file, then build the encoded train and held-out examples.

`read_training_data` does all the file reading (data files, corpus, word lists) before any model is loaded,
so that bad input is reported cheaply; `prepare` then mixes, splits, augments and encodes with the model's
tokenizer: mix -> split -> CDA (each side separately, so a pair never straddles the split) -> encode.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.core.cda import WordLists, load_word_lists
from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.debias.anchors import anchor_examples, anchor_terms
from vdata.debias.data import (
    Example,
    apply_cda,
    balance_groups,
    mix,
    read_corpus,
    read_examples,
    split_heldout,
)
from vdata.debias.labels import Encoded, TrainingKind, encode
from vdata.debias.settings import DebiasSettings

# Seed offsets of the held-out side, so that its CDA draws and masking differ from the training side's.
VAL_CDA_SEED_OFFSET = 1
VAL_ENCODE_SEED_OFFSET = 7919


@dataclass
class TrainingData:
    """Everything read from disk: synthetic examples, original (corpus) examples, word lists, file hashes."""

    synthetic: list[Example]
    original: list[Example]
    word_lists: WordLists | None
    hashes: dict[str, str]


@dataclass
class Prepared:
    """The encoded examples a run trains and validates on, and what it reports about them."""

    train: list[Encoded]
    val: list[Encoded]
    counts: dict[str, int]
    data_hashes: dict[str, str]
    anchors: list[Encoded]  # neutral sentences for the `group_kl` term (empty when it is off)


def read_training_data(s: DebiasSettings) -> TrainingData:
    """Read the data files, the corpus and (when CDA or the `mask` mitigation needs them) the word lists."""
    synthetic: list[Example] = []
    hashes: dict[str, str] = {}
    for name in s.data:
        path = Path(name)
        found = read_examples(path)
        if not found:
            raise UserError(
                f"{path}: no usable records (need text, or Han et al. [S, T, A] lists / prompt items)"
            )
        synthetic += found
        hashes[str(path)] = sha256_file(path)
    if s.limit:
        synthetic = synthetic[: s.limit]
    original: list[Example] = []
    if s.mix_corpus:
        corpus = Path(s.mix_corpus)
        original = read_corpus(corpus)
        if not original:
            raise UserError(f"corpus file {corpus} has no non-blank lines")
        hashes[str(corpus)] = sha256_file(corpus)
    word_lists = None
    if not (s.cda or "mask" in s.mitigation) and (s.balance_groups or s.group_kl) and not s.word_lists:
        # Balancing and anchors use the word lists where they are found, the data's own targets anyway.
        with contextlib.suppress(UserError):
            word_lists = load_word_lists(data_dir=s.data_dir)
    elif s.cda or "mask" in s.mitigation or s.balance_groups or s.group_kl:
        word_lists = load_word_lists(data_dir=s.data_dir, path=s.word_lists)
        if s.word_lists:
            hashes[str(s.word_lists)] = sha256_file(Path(s.word_lists))
        missing = [c for c in s.cda if c not in word_lists]
        if missing:
            raise UserError(
                f"no CDA word list for {', '.join(missing)}; the word lists have {', '.join(sorted(word_lists))}"
            )
    return TrainingData(synthetic, original, word_lists, hashes)


def split_examples(data: TrainingData, s: DebiasSettings) -> tuple[list[Example], list[Example]]:
    """(train, held-out) examples: mixed to the bias ratio, split, then group balancing and CDA on each
    side separately."""
    mixed = mix(data.synthetic, data.original, s.bias_ratio, s.seed)
    train, val = split_heldout(mixed, s.val_fraction, s.seed)
    if s.balance_groups:
        terms = s.balance_terms
        train = balance_groups(train, s.balance_groups, data.word_lists, s.seed, s.cda_mode, terms)
        val_seed = s.seed + VAL_CDA_SEED_OFFSET
        val = balance_groups(val, s.balance_groups, data.word_lists, val_seed, s.cda_mode, terms)
    if s.cda and data.word_lists:
        train = apply_cda(train, s.cda, data.word_lists, s.seed, s.cda_mode)
        val = apply_cda(val, s.cda, data.word_lists, s.seed + VAL_CDA_SEED_OFFSET, s.cda_mode)
    return train, val


def group_terms_from(word_lists: WordLists | None) -> list[str]:
    """Every word of every category's word lists (the `mask` mitigation's group-identity terms)."""
    if not word_lists:
        return []
    return sorted({w for tuples in word_lists.values() for t in tuples for w in t})


def encode_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    kind: TrainingKind,
    s: DebiasSettings,
    group_terms: Sequence[str],
    seed: int,
) -> list[Encoded]:
    """The encodable examples, in order; masked-LM masking is drawn once per example from a seeded
    stream, so a resumed run sees the same data."""
    rng = random.Random(seed)
    encoded = (
        encode(ex, tokenizer, kind, s.objective, s.mitigation, group_terms, s.max_length, rng)
        for ex in examples
    )
    return [enc for enc in encoded if enc is not None]


def prepare(data: TrainingData, tokenizer: Any, kind: TrainingKind, s: DebiasSettings) -> Prepared:
    """Encoded train and held-out examples with their counts; a UserError when nothing can be trained."""
    train_ex, val_ex = split_examples(data, s)
    terms = group_terms_from(data.word_lists)
    train = encode_examples(train_ex, tokenizer, kind, s, terms, s.seed)
    val = encode_examples(val_ex, tokenizer, kind, s, terms, s.seed + VAL_ENCODE_SEED_OFFSET)
    anchors = encode_anchors(train_ex, data, tokenizer, kind, s) if s.group_kl > 0 else []
    if not train:
        why = " (none has its attribute word in the text)" if s.objective == "attribute" else ""
        raise UserError(f"no usable training examples in {', '.join(s.data)}{why}; check the data files")
    counts = {
        "synthetic_read": len(data.synthetic),
        "original_read": len(data.original),
        "train_examples": len(train),
        "val_examples": len(val),
        "train_synthetic": sum(x.synthetic for x in train),
        "dropped_unlabelable": len(train_ex) + len(val_ex) - len(train) - len(val),
        "anchor_examples": len(anchors),
    }
    return Prepared(train, val, counts, data.hashes, anchors)


def encode_anchors(
    train: Sequence[Example], data: TrainingData, tokenizer: Any, kind: TrainingKind, s: DebiasSettings
) -> list[Encoded]:
    """The `group_kl` term's neutral sentences, labelled at the group term; a UserError when the data
    names no group term to hold."""
    terms = anchor_terms(train, data.word_lists)
    if not terms:
        raise UserError(
            "--group-kl needs group terms: give records with a `target` that occurs in their text "
            "(Han et al. files have one), or train without the anchor: --group-kl 0"
        )
    encoded = (
        encode(ex, tokenizer, kind, "attribute", (), (), s.max_length)
        for ex in anchor_examples(terms, s.seed)
    )
    return [enc for enc in encoded if enc is not None]
