"""Group-balanced data and the `group_kl` anchor term: known answers, labels, and real resumable runs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.debias.anchors import TEMPLATES, anchor_examples, anchor_terms
from vdata.debias.data import Example, balance_groups, group_terms, replace_term
from vdata.debias.loop import StopRequested
from vdata.debias.settings import DebiasSettings
from vdata.debias.train import run_debias

WORD_LISTS = {
    "gender": [("man", "woman"), ("he", "she"), ("his", "her")],
    "race": [("black", "white", "asian")],
}
HAN_RACE = "han2024-synthetic/Targeted_Debiasing/Racial/Synthetic_Race_1S.json"


def test_replace_term_keeps_capitals_and_fits_the_article() -> None:
    assert (
        replace_term("An Asian chef and an asian cook.", "Asian", "Scottish")
        == "A Scottish chef and a Scottish cook."
    )
    assert replace_term("The Scottish team won.", "Scottish", "Inuit") == "The Inuit team won."
    assert replace_term("a basque village", "basque", "Irish") == "an Irish village"
    assert replace_term("Scottishness is not Scottish.", "Scottish", "Thai") == "Scottishness is not Thai."


def test_balance_swaps_word_list_targets_with_cda_and_others_with_data_terms() -> None:
    examples = [
        Example("The woman said she was stoic.", "woman", "stoic"),
        Example("Scottish people are inventive.", "Scottish", "inventive"),
        Example("Thai cooks are careful.", "Thai", "careful"),
        Example("Zulu artists are bold.", "Zulu", "bold"),
        Example("Plain corpus line.", synthetic=False),
    ]
    assert group_terms(examples) == ["woman", "Scottish", "Thai", "Zulu"]
    out = balance_groups(examples, 1, WORD_LISTS, seed=0)
    texts = [e.text for e in out]
    # word-list target: the CDA swap (pronoun too), the target swapped alike
    assert texts[:2] == ["The woman said she was stoic.", "The man said he was stoic."]
    assert out[1].target == "man" and out[1].attribute == "stoic" and out[1].source.endswith("+bal0")
    # other targets: another target of the data, seeded; the original is kept first
    assert texts[2] == "Scottish people are inventive." and out[3].target in {"Thai", "Zulu"}
    assert texts[3] == f"{out[3].target} people are inventive."
    assert texts[-1] == "Plain corpus line." and len(out) == 2 * 4 + 1  # corpus lines are never balanced
    assert balance_groups(examples, 1, WORD_LISTS, seed=0) == out
    assert balance_groups(examples, 0, WORD_LISTS, seed=0) == examples
    # n counterparts, distinct groups, never the sentence's own
    three = balance_groups(examples[1:4], 2, None, seed=3)
    assert three[0].target == "Scottish"
    assert len({e.target for e in three[:3]}) == 3


def test_balance_evens_out_how_often_each_group_is_named() -> None:
    rng = random.Random(1)
    terms = ["Arab", "Basque", "Maori", "Thai"]
    examples = [
        Example(f"The {t} visitor was kind.", t, "kind") for t in terms for _ in range(rng.randint(1, 30))
    ]
    out = balance_groups(examples, 3, None, seed=0)  # every other group named once per sentence
    counts = {t: sum(e.target == t for e in out) for t in terms}
    assert len(set(counts.values())) == 1 and sum(counts.values()) == 4 * len(examples)


def test_balance_terms_name_the_counterpart_groups_the_data_leaves_out() -> None:
    examples = [
        Example("Scottish people are inventive.", "Scottish", "inventive"),
        Example("A Thai cook is careful.", "Thai", "careful"),
        Example("The woman was stoic.", "woman", "stoic"),
    ]
    out = balance_groups(examples, 1, WORD_LISTS, seed=0, counterpart_terms=["white", "Asian"])
    assert out[1].text in {"White people are inventive.", "Asian people are inventive."}
    assert out[1].target in {"white", "Asian"} and out[1].attribute == "inventive"
    assert out[3].text in {"A white cook is careful.", "An Asian cook is careful."}
    assert out[5].text == "The man was stoic."  # a word-list target still gets its CDA swap
    # every sentence with a term of its own is balanced against the given groups only
    many = [Example(f"The {t} visitor was kind.", t, "kind") for t in ("Arab", "Basque", "Maori") * 20]
    targets = {e.target for e in balance_groups(many, 1, None, seed=0, counterpart_terms=["white"])}
    assert targets == {"Arab", "Basque", "Maori", "white"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"balance_terms": "white"}, "needs --balance-groups N"),
        ({"balance_groups": 1, "balance_terms": ["white", " "]}, "has an empty term"),
    ],
)
def test_balance_terms_errors(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        validate_settings(
            DebiasSettings, {"model": "m", "data": ["d.json"], "out": "o", **flags}, source="vdata debias"
        )


def test_anchor_terms_and_sentences() -> None:
    examples = [
        Example("The woman was stoic.", "woman", "stoic"),
        Example("Thai cooks are careful.", "Thai", "careful"),
    ]
    terms = anchor_terms(examples, WORD_LISTS)
    assert terms == ["man", "Thai", "woman"]  # "woman" brings its word-list partner
    anchors = anchor_examples(terms, seed=0)
    assert len(anchors) == len(terms) * len(TEMPLATES)
    assert all(not a.synthetic and a.attribute == a.target and a.target in a.text for a in anchors)
    assert anchor_examples(terms, seed=0) == anchors and anchor_examples(terms, seed=1) != anchors


def test_anchor_labels_are_the_group_term_tokens(smollm2: Any) -> None:
    from vdata.debias.labels import CAUSAL, IGNORE, encode

    tok = smollm2.tokenizer
    [anchor] = [a for a in anchor_examples(["Native American"], 0) if a.text.startswith("The topic")]
    enc = encode(anchor, tok, CAUSAL, "attribute")
    assert enc is not None
    labelled = [i for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE]
    assert tok.decode(labelled).strip() == "Native American"


def settings(model: str, data: list[Path], out: Path, **kw: object) -> DebiasSettings:
    base = {"epochs": 1, "batch_size": 4, "max_length": 24, "save_every": 1, "limit": 24, "lr": 1e-2}
    values = {"model": model, "data": [str(p) for p in data], "out": str(out), **base, **kw}
    return validate_settings(DebiasSettings, values, source="test", prefix="--")


def test_settings_bounds_and_fingerprint() -> None:
    s = settings("m", [Path("a.json")], Path("o"))
    assert (s.balance_groups, s.group_kl) == (0, 0.0)
    with pytest.raises(UserError, match=r"--balance-groups(.|\n)*--group-kl"):
        settings("m", [Path("a.json")], Path("o"), balance_groups=-1, group_kl=-0.5)
    assert (
        s.fingerprint_fields()
        != settings("m", [Path("a.json")], Path("o"), group_kl=1.0).fingerprint_fields()
    )


@pytest.mark.parametrize("method", ["bottleneck", "lora"])
def test_balanced_run_with_group_kl_resumes_exactly(
    method: str, tiny_llama_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    import torch

    data = [data_dir / HAN_RACE]
    full = settings(
        str(tiny_llama_dir),
        data,
        tmp_path / "full",
        method=method,
        balance_groups=1,
        group_kl=1.0,
        data_dir=str(data_dir),
    )
    m = run_debias(full).manifest
    counts = m["counts"]
    assert counts["synthetic_read"] == 24 and counts["train_examples"] > 24  # balanced: counterparts added
    assert counts["anchor_examples"] >= 20 * len(TEMPLATES)
    assert m["settings"]["group_kl"] == 1.0 and m["settings"]["balance_groups"] == 1

    cut = full.model_copy(update={"out": str(tmp_path / "cut"), "stop_after_steps": 3})
    with pytest.raises(StopRequested):
        run_debias(cut)
    resumed = run_debias(cut.model_copy(update={"stop_after_steps": None}))
    assert resumed.resumed_from_step == 3
    names = {"bottleneck": "bottleneck_adapter.safetensors", "lora": "adapter_model.safetensors"}
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "full" / names[method]))
    b = load_file(str(tmp_path / "cut" / names[method]))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_group_kl_holds_the_group_term_probability(
    tiny_llama_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """With a large weight the anchor term keeps the group-term distributions near the base model's."""
    import torch

    from vdata.debias.anchors import anchor_examples as make
    from vdata.debias.labels import CAUSAL, encode, pad_batch
    from vdata.lm.models import load_model

    data = [data_dir / HAN_RACE]
    common = {"method": "bottleneck", "limit": 48, "epochs": 2, "lr": 3e-2, "data_dir": str(data_dir)}
    free = run_debias(settings(str(tiny_llama_dir), data, tmp_path / "free", **common)).out
    held = run_debias(settings(str(tiny_llama_dir), data, tmp_path / "held", group_kl=50.0, **common)).out
    base = load_model(str(tiny_llama_dir))
    anchors = [encode(a, base.tokenizer, CAUSAL, "attribute") for a in make(["Scottish", "Thai", "Arab"], 0)]
    batch = pad_batch([a for a in anchors if a is not None], 0)

    def kl(model_dir: Path) -> float:
        from vdata.debias.trainee import kl_base_to_model

        lm = load_model(str(model_dir))
        with torch.no_grad():
            args = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            logits, labels = CAUSAL.align(lm.model(**args).logits, batch["labels"])
            ref, _ = CAUSAL.align(base.model(**args).logits, batch["labels"])
        mask = labels != -100
        return float(kl_base_to_model(logits[mask], ref[mask]))

    assert kl(held) < kl(free)


def test_group_kl_without_group_terms_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "A plain sentence about the weather."}\n' * 12)
    s = settings(str(tiny_llama_dir), [data], tmp_path / "o", group_kl=1.0)
    with pytest.raises(UserError, match="--group-kl needs group terms"):
        run_debias(s)
    assert not (tmp_path / "o").exists()


def test_balance_works_without_word_lists(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vdata.debias.prepare import read_training_data

    monkeypatch.setenv("VDATA_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s = settings("m", [data_dir / HAN_RACE], tmp_path / "o", balance_groups=1, data_dir=str(tmp_path))
    assert read_training_data(s).word_lists is None  # the data's own targets are enough
    with pytest.raises(UserError):
        read_training_data(s.model_copy(update={"cda": ["race"]}))  # CDA needs the lists
