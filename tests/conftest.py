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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED / "MANIFEST.tsv").exists():
        pytest.skip(f"benchmark data not found at {SHARED}; set VDATA_DATA_DIR")
    return SHARED


@pytest.fixture(scope="session")
def smollm2():
    """The embedded local model, loaded once per test session."""
    from vdata.core.models import load_model

    return load_model("smollm2-135m")
