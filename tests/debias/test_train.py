"""Real training runs: a tiny random BERT (masked LM) and a short SmolLM2 LoRA run; resume; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.debias.loop import StopRequested
from vdata.debias.settings import DebiasSettings
from vdata.debias.train import CHECKPOINT_DIR, MANIFEST, run_debias

HAN_S = "han2024-synthetic/Targeted_Debiasing/Gender/Synthetic_Gender_1S.json"


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir: Path) -> str:
    return str(tiny_bert_dir)


def settings(model: str, data: list[Path], out: Path, **kw: object) -> DebiasSettings:
    """Settings validated as the CLI validates its flags (errors name the flags)."""
    # LoRA on whole sentences unless a test says otherwise.
    base = {"epochs": 2, "batch_size": 4, "max_length": 24, "save_every": 1, "limit": 24, "method": "lora"}
    base |= {"objective": "sentence"}
    values = {"model": model, "data": [str(p) for p in data], "out": str(out), **base, **kw}
    return validate_settings(DebiasSettings, values, source="test", prefix="--")


def adapter_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def test_masked_lm_lora_attribute_objective_resumes_exactly(
    tiny_bert: str, data_dir: Path, tmp_path: Path
) -> None:
    import torch

    data = [data_dir / HAN_S]
    full = settings(tiny_bert, data, tmp_path / "full", objective="attribute", lr=1e-2)
    m = run_debias(full).manifest
    assert m["model_kind"] == "masked" and m["objective"] == "attribute"
    assert m["steps"] == 12 and m["epochs_completed"] == 2
    assert not (tmp_path / "full" / CHECKPOINT_DIR).exists()

    cut = full.model_copy(update={"out": str(tmp_path / "cut"), "stop_after_steps": 5})
    with pytest.raises(StopRequested):
        run_debias(cut)
    assert not (tmp_path / "cut" / MANIFEST).exists()  # an interrupted run is never presented as finished
    assert (tmp_path / "cut" / CHECKPOINT_DIR / "state.pt").exists()
    resumed = run_debias(cut.model_copy(update={"stop_after_steps": None}))
    assert resumed.resumed_from_step == 5
    a, b = adapter_tensors(tmp_path / "full"), adapter_tensors(tmp_path / "cut")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same data order: identical weights

    again = run_debias(full)
    assert again.already_done
    with pytest.raises(UserError, match="different settings"):
        run_debias(full.model_copy(update={"lr": 5e-3}))


def test_masked_lm_bottleneck_mix_and_mitigations(tiny_bert: str, data_dir: Path, tmp_path: Path) -> None:
    import torch

    from vdata.lm.models import load_model

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"Line {i} of plain text about the weather and trains." for i in range(40)))
    s = settings(
        tiny_bert,
        [data_dir / HAN_S],
        tmp_path / "bn",
        method="bottleneck",
        mix_corpus=str(corpus),
        bias_ratio=0.5,
        mitigation=["token", "mask", "loss"],
        cda=["gender"],
        data_dir=str(data_dir),
        lr=1e-2,
    )
    m = run_debias(s).manifest
    assert (
        m["counts"]["original_read"] == 40
        and 0 < m["counts"]["train_synthetic"] < m["counts"]["train_examples"]
    )
    # 2 layers x (32*2+2 + 2*32+32) parameters: reduction factor 16 on hidden size 32 -> bottleneck 2.
    assert m["trainable_parameters"] == 2 * (32 * 2 + 2 + 2 * 32 + 32)
    cfg = json.loads((tmp_path / "bn" / "bottleneck_config.json").read_text())
    assert cfg["modules"] == ["bert.encoder.layer.0.output.dense", "bert.encoder.layer.1.output.dense"]
    tuned = load_model(str(tmp_path / "bn"))
    base = load_model(tiny_bert)
    ids = tuned.tokenizer("the woman was stoic", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(tuned.model(input_ids=ids).logits, base.model(input_ids=ids).logits)


def test_masked_lm_full_finetuning(tiny_bert: str, data_dir: Path, tmp_path: Path) -> None:
    from vdata.lm.models import load_model

    m = run_debias(settings(tiny_bert, [data_dir / HAN_S], tmp_path / "ft", method="full", lr=1e-3)).manifest
    assert m["files"] == ["full/"] and (tmp_path / "ft" / "full" / "config.json").exists()
    assert load_model(str(tmp_path / "ft")).kind == "masked"


@pytest.mark.slow
def test_smollm2_lora_lowers_loss_and_loads(data_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from vdata.lm.models import load_model, smollm2_checkpoint

    out = tmp_path / "smol"
    s = settings(
        "smollm2-135m",
        [data_dir / HAN_S],
        out,
        limit=16,
        epochs=3,
        batch_size=8,
        lr=2e-3,
        merge=True,
        val_fraction=0,
        save_every=0,
    )
    m = run_debias(s).manifest
    assert m["losses"]["final_train"] < m["losses"]["initial_train"] - 0.3
    assert m["base_model_sha256"] and m["libraries"]["peft"] and m["train_seconds"] > 0
    assert str(data_dir / HAN_S) in m["data"]
    base = AutoModelForCausalLM.from_pretrained(str(smollm2_checkpoint()))
    peft_model = PeftModel.from_pretrained(base, str(out)).eval()
    merged = load_model(str(out))  # merged/ is preferred when present
    ids = merged.tokenizer("The woman was remarkably stoic.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(peft_model(input_ids=ids).logits, merged.model(input_ids=ids).logits, atol=1e-3)


def test_bad_input_writes_nothing(tiny_bert: str, data_dir: Path, tmp_path: Path) -> None:
    good = [data_dir / HAN_S]
    empty = tmp_path / "empty.json"
    empty.write_text("[[1, 2]]")
    bad_lists = tmp_path / "lists.json"
    bad_lists.write_text(json.dumps({"gender": [["he"]]}))
    # Each case's settings are built inside pytest.raises: bad values are refused when the settings are
    # validated, bad files when the run reads them; either way nothing is written.
    cases: list[tuple[str, list[Path], str, dict[str, object], str]] = [
        (tiny_bert, [empty], "o1", {}, "no usable records"),
        ("/nonexistent/model", good, "o2", {}, "cannot load model"),
        (
            tiny_bert,
            good,
            "o3",
            {"mix_corpus": str(tmp_path / "no.txt"), "bias_ratio": 0.5},
            "does not exist",
        ),
        (tiny_bert, good, "o4", {"mix_corpus": str(empty), "bias_ratio": 1.5}, "between 0 and 1"),
        (tiny_bert, good, "o5", {"bias_ratio": 0.5}, "needs --mix-corpus"),
        (tiny_bert, good, "o6", {"cda": ["gender"], "word_lists": str(bad_lists)}, "at least two words"),
        (tiny_bert, good, "o7", {"mitigation": ["magic"]}, "unknown --mitigation"),
        (tiny_bert, good, "o8", {"method": "prefix"}, "--method"),
    ]
    for model, data, out, kw, message in cases:
        with pytest.raises(UserError, match=message):
            run_debias(settings(model, data, tmp_path / out, **kw))
        assert not (tmp_path / out).exists(), out


def test_cli_exit_code_2(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "cli"
    env = {**os.environ, "VDATA_DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "debias",
            "smollm2-135m",
            str(data_dir / HAN_S),
            "--out",
            str(out),
            "--objective",
            "sentence",
            "--mix-corpus",
            str(tmp_path / "missing.txt"),
            "--bias-ratio",
            "0.3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "missing.txt does not exist" in proc.stderr
    assert not out.exists()
