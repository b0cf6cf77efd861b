"""The `vdata debias` training run: data -> examples -> batches -> adapter/model in DIR, resumable.

Order of work, so that bad input never leaves anything in DIR: read and check every input (data, corpus,
word lists, settings), load the model, and only then create DIR. Progress is checkpointed in
``DIR/.checkpoint/state.pt`` (atomic replace); rerunning the same command resumes from it. The
adapter files are written next, and ``manifest.json`` last, atomically: a DIR without manifest.json is
an unfinished run, never a finished one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vdata.core.benchdata import sha256_file
from vdata.core.errors import UserError
from vdata.debias.data import Example, apply_cda, mix, read_corpus, read_examples, split_heldout
from vdata.debias.labels import IGNORE, MITIGATIONS, Encoded, encode, pad_batch

METHODS = ("lora", "bottleneck", "full")
OBJECTIVES = ("sentence", "attribute")
CHECKPOINT_DIR = ".checkpoint"
MANIFEST = "manifest.json"
TRAIN_LOSS_SAMPLE = 128  # training examples whose loss is reported before and after (a cheap diagnostic)


@dataclass
class DebiasSettings:
    """Every setting of a run; all of them (but `out`, `quiet`, `stop_after_steps`) go into the fingerprint."""

    model: str
    data: list[str]
    out: str
    method: str = "lora"
    objective: str = "sentence"
    cda: list[str] = field(default_factory=list)
    cda_mode: str = "cased"
    word_lists: str | None = None
    mix_corpus: str | None = None
    bias_ratio: float | None = None
    mitigation: list[str] = field(default_factory=list)
    kl_coef: float = 1.0
    synthetic_weight: float = 1.0
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 1
    lr: float | None = None
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    max_length: int = 64
    val_fraction: float = 0.1
    patience: int = 2
    eval_every: int = 0
    save_every: int = 50
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    reduction_factor: int = 16
    merge: bool = False
    seed: int = 0
    data_dir: str | None = None
    limit: int | None = None
    quiet: bool = False
    stop_after_steps: int | None = None

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return {"lora": 2e-4, "bottleneck": 1e-4, "full": 2e-5}[self.method]

    def fingerprint_fields(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("out", "quiet", "stop_after_steps", "data_dir"):
            d.pop(k)
        d["lr"] = self.learning_rate()
        return d


@dataclass
class Prepared:
    train: list[Encoded]
    val: list[Encoded]
    train_examples: list[Example]
    val_examples: list[Example]
    counts: dict[str, int]
    data_hashes: dict[str, str]


def check_settings(s: DebiasSettings) -> None:
    if s.method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}; got {s.method!r}")
    if s.objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}; got {s.objective!r}")
    bad = [m for m in s.mitigation if m not in MITIGATIONS]
    if bad:
        raise UserError(f"unknown --mitigation {', '.join(bad)}; choose from {', '.join(MITIGATIONS)}")
    if s.bias_ratio is not None and not 0.0 <= s.bias_ratio <= 1.0:
        raise UserError(f"--bias-ratio must be between 0 and 1 (the synthetic share); got {s.bias_ratio}")
    if s.bias_ratio is not None and not s.mix_corpus:
        raise UserError("--bias-ratio needs --mix-corpus FILE (the original text to mix with)")
    if s.mix_corpus and not Path(s.mix_corpus).exists():
        raise UserError(f"corpus file {s.mix_corpus} does not exist; pass an existing file to --mix-corpus")
    for name, value in (
        ("--epochs", s.epochs),
        ("--batch-size", s.batch_size),
        ("--grad-accum", s.grad_accum),
    ):
        if value < 1:
            raise UserError(f"{name} must be at least 1; got {value}")
    if s.max_length < 4:
        raise UserError(f"--max-length must be at least 4 tokens; got {s.max_length}")
    if not 0.0 <= s.val_fraction < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1); got {s.val_fraction}")
    if s.merge and s.method != "lora":
        raise UserError(
            "--merge applies to LoRA only (bottleneck adapters cannot be merged; full saves a model)"
        )
    if not s.data:
        raise UserError("give at least one DATA file (vdata records or Han et al. JSON)")


def load_examples(s: DebiasSettings) -> tuple[list[Example], list[Example], dict[str, str]]:
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
    return synthetic, original, hashes


def group_terms_from(word_lists: dict[str, list[tuple[str, ...]]] | None) -> list[str]:
    if not word_lists:
        return []
    return sorted({w for tuples in word_lists.values() for t in tuples for w in t})


def prepare(s: DebiasSettings, tokenizer: Any, kind: str) -> Prepared:
    """Examples -> mix -> split -> CDA (each side separately, so a pair never straddles the split) -> encode."""
    synthetic, original, hashes = load_examples(s)
    word_lists = None
    if s.cda or "mask" in s.mitigation:
        from vdata.core.cda import load_word_lists

        word_lists = load_word_lists(data_dir=s.data_dir, path=s.word_lists)
        if s.word_lists:
            hashes[str(s.word_lists)] = sha256_file(Path(s.word_lists))
        missing = [c for c in s.cda if c not in word_lists]
        if missing:
            raise UserError(
                f"no CDA word list for {', '.join(missing)}; the word lists have {', '.join(sorted(word_lists))}"
            )
    mixed = mix(synthetic, original, s.bias_ratio, s.seed)
    train_ex, val_ex = split_heldout(mixed, s.val_fraction, s.seed)
    if s.cda and word_lists:
        train_ex = apply_cda(train_ex, s.cda, word_lists, s.seed, s.cda_mode)  # type: ignore[arg-type]
        val_ex = apply_cda(val_ex, s.cda, word_lists, s.seed + 1, s.cda_mode)  # type: ignore[arg-type]
    terms = group_terms_from(word_lists)
    train = _encode_all(train_ex, tokenizer, kind, s, terms, s.seed)
    val = _encode_all(val_ex, tokenizer, kind, s, terms, s.seed + 7919)
    if not train:
        why = " (none has its attribute word in the text)" if s.objective == "attribute" else ""
        raise UserError(f"no usable training examples in {', '.join(s.data)}{why}; check the data files")
    counts = {
        "synthetic_read": len(synthetic),
        "original_read": len(original),
        "train_examples": len(train),
        "val_examples": len(val),
        "train_synthetic": sum(x.synthetic for x in train),
        "dropped_unlabelable": len(train_ex) + len(val_ex) - len(train) - len(val),
    }
    return Prepared(train, val, train_ex, val_ex, counts, hashes)


def _encode_all(
    examples: Sequence[Example], tokenizer: Any, kind: str, s: DebiasSettings, terms: list[str], seed: int
) -> list[Encoded]:
    # Masked-LM masking is drawn once per example from a seeded stream, so resumed runs see the same data.
    rng = random.Random(seed)
    out = []
    for ex in examples:
        enc = encode(ex, tokenizer, kind, s.objective, s.mitigation, terms, s.max_length, rng)  # type: ignore[arg-type]
        if enc is not None:
            out.append(enc)
    return out


def batches_for_epoch(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-bucketed batches: shuffle, sort by length inside chunks of 50 batches, shuffle the batches."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


class Trainee:
    """The model being trained, with a uniform view over LoRA, bottleneck and full fine-tuning."""

    def __init__(self, lm: Any, s: DebiasSettings) -> None:
        import torch

        self.lm = lm
        self.settings = s
        self.base_copy: Any = None
        self.bottleneck: Any = None
        torch.manual_seed(s.seed)  # before adapters are created: their initialisation is seeded too
        model = lm.model
        if s.method == "lora":
            from peft import LoraConfig, get_peft_model

            targets: Any = s.lora_targets if s.lora_targets == "all-linear" else s.lora_targets.split(",")
            config = LoraConfig(
                r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout, target_modules=targets
            )
            model = get_peft_model(model, config)
        elif s.method == "bottleneck":
            from vdata.lm.bottleneck import attach_bottleneck

            for p in model.parameters():
                p.requires_grad_(False)
            self.bottleneck = attach_bottleneck(model, s.reduction_factor)
        elif "loss" in s.mitigation:
            self.base_copy = copy.deepcopy(model).eval()
            for p in self.base_copy.parameters():
                p.requires_grad_(False)
        self.model = model

    def trainable(self) -> dict[str, Any]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def trainable_state(self) -> dict[str, Any]:
        return {n: p.detach().clone() for n, p in self.trainable().items()}

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        import torch

        params = self.trainable()
        with torch.no_grad():
            for n, v in state.items():
                params[n].copy_(v)

    def base_logits(self, batch: dict[str, Any]) -> Any:
        """Logits of the frozen base model (adapter switched off), for the `loss` mitigation's KL term."""
        import torch

        with torch.no_grad():
            if self.settings.method == "lora":
                with self.model.disable_adapter():
                    return self.model(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    ).logits
            if self.settings.method == "bottleneck":
                self.bottleneck.set_enabled(False)
                try:
                    return self.model(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    ).logits
                finally:
                    self.bottleneck.set_enabled(True)
            return self.base_copy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def batch_loss(
    trainee: Trainee, batch: dict[str, Any], kind: str, with_mitigation: bool = True
) -> tuple[Any, int]:
    """Mean token cross-entropy (synthetic tokens weighted by `synthetic_weight` under the `loss`
    mitigation) plus ``kl_coef`` x mean KL(base || model) over the synthetic samples' labelled tokens."""
    import torch
    import torch.nn.functional as F

    s = trainee.settings
    logits = trainee.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    if kind == "causal":
        logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != IGNORE
    n_tokens = int(mask.sum())
    if n_tokens == 0:
        return logits.sum() * 0.0, 0
    token_ce = F.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
    weights = mask.float()
    use_loss_mitigation = with_mitigation and "loss" in s.mitigation
    synthetic_rows = batch["synthetic"][:, None].expand_as(mask)
    if use_loss_mitigation:
        weights = torch.where(synthetic_rows, weights * s.synthetic_weight, weights)
    loss = (token_ce * weights).sum() / mask.sum()
    syn_mask = mask & synthetic_rows
    if use_loss_mitigation and s.kl_coef > 0 and bool(syn_mask.any()):
        base = trainee.base_logits(batch)
        if kind == "causal":
            base = base[:, :-1]
        log_p = F.log_softmax(logits[syn_mask], dim=-1)
        log_q = F.log_softmax(base[syn_mask], dim=-1)
        kl = (log_q.exp() * (log_q - log_p)).sum(-1).mean()
        loss = loss + s.kl_coef * kl
    return loss, n_tokens


def evaluate_loss(
    trainee: Trainee, items: Sequence[Encoded], kind: str, pad_id: int, batch_size: int
) -> float:
    """Token-weighted mean cross-entropy on held-out items (no mitigation terms), in eval mode."""
    import torch

    if not items:
        return float("nan")
    trainee.model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = pad_batch([items[i] for i in order[start : start + batch_size]], pad_id)
            loss, n = batch_loss(trainee, batch, kind, with_mitigation=False)
            total += float(loss) * n
            count += n
    trainee.model.train()
    return total / max(1, count)


def settings_fingerprint(s: DebiasSettings, data_hashes: dict[str, str], base_hash: str | None) -> str:
    blob = json.dumps(
        {"settings": s.fingerprint_fields(), "data": data_hashes, "base": base_hash},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _library_versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    from vdata import __version__

    return {
        "vdata": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
    }


@dataclass
class RunResult:
    out: Path
    manifest: dict[str, Any]
    resumed_from_step: int
    already_done: bool = False


class StopRequested(Exception):
    """Raised after `stop_after_steps` optimizer steps; the checkpoint on disk resumes the run."""


def run_debias(s: DebiasSettings, console: Any = None) -> RunResult:
    """Train per `s` into `s.out`; resume from a checkpoint there; return the manifest."""
    import torch

    from vdata.lm.models import load_model

    check_settings(s)
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose another path")
    # Read the data before loading the model: data errors are cheaper to report.
    load_examples(s)
    lm = load_model(s.model)
    kind = lm.kind
    if kind == "masked" and lm.tokenizer.mask_token_id is None:
        raise UserError(f"{s.model}: a masked LM whose tokenizer has no mask token cannot be trained")
    prepared = prepare(s, lm.tokenizer, kind)
    base_hash = lm.provenance.get("model_sha256")
    fingerprint = settings_fingerprint(s, prepared.data_hashes, base_hash)

    manifest_path = out / MANIFEST
    if manifest_path.exists():
        done = json.loads(manifest_path.read_text())
        if done.get("fingerprint") == fingerprint:
            return RunResult(out, done, resumed_from_step=-1, already_done=True)
        raise UserError(
            f"{out} already holds a finished run with different settings or data; choose another --out "
            "or delete that directory"
        )
    ckpt_dir = out / CHECKPOINT_DIR
    state_file = ckpt_dir / "state.pt"
    state: dict[str, Any] | None = None
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        if state.get("fingerprint") != fingerprint:
            raise UserError(
                f"{out} holds an unfinished run with different settings or data; rerun that exact command to "
                "resume it, or choose another --out"
            )
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    trainee = Trainee(lm, s)
    model = trainee.model
    model.train()
    pad_id = lm.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = lm.tokenizer.eos_token_id if lm.tokenizer.eos_token_id is not None else 0
    lengths = [len(x.input_ids) for x in prepared.train]
    batches_per_epoch = math.ceil(len(prepared.train) / s.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / s.grad_accum)
    total_steps = steps_per_epoch * s.epochs
    optimizer = torch.optim.AdamW(
        list(trainee.trainable().values()), lr=s.learning_rate(), weight_decay=s.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, round(total_steps * s.warmup_ratio))
    )
    progress_state: dict[str, Any] = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "best_val": float("inf"),
        "bad_evals": 0,
        "history": [],
        "train_seconds": 0.0,
        "samples_seen": 0,
        "stopped_early": False,
    }
    initial_val = None
    initial_train = None
    best_state: dict[str, Any] | None = None
    if state is not None:
        trainee.load_trainable_state(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress_state = state["progress"]
        best_state = state.get("best_state")
        initial_val = state.get("initial_val")
        initial_train = state.get("initial_train")
        torch.set_rng_state(state["torch_rng"])
    else:
        initial_val = evaluate_loss(trainee, prepared.val, kind, pad_id, s.batch_size)
        initial_train = evaluate_loss(trainee, prepared.train[:TRAIN_LOSS_SAMPLE], kind, pad_id, s.batch_size)
    resumed_from = progress_state["step"]

    def save_checkpoint() -> None:
        snapshot = {
            "fingerprint": fingerprint,
            "trainable": trainee.trainable_state(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": progress_state,
            "best_state": best_state,
            "initial_val": initial_val,
            "initial_train": initial_train,
            "torch_rng": torch.get_rng_state(),
        }
        tmp = ckpt_dir / f"state.{os.getpid()}.tmp"
        torch.save(snapshot, tmp)
        os.replace(tmp, state_file)

    def validate() -> bool:
        """Record a held-out loss; return True when early stopping says stop."""
        nonlocal best_state
        if not prepared.val:
            return False
        val = evaluate_loss(trainee, prepared.val, kind, pad_id, s.batch_size)
        progress_state["history"].append({"step": progress_state["step"], "val_loss": val})
        if val < progress_state["best_val"] - 1e-6:
            progress_state["best_val"] = val
            progress_state["bad_evals"] = 0
            best_state = trainee.trainable_state()
            return False
        progress_state["bad_evals"] += 1
        return progress_state["bad_evals"] >= s.patience

    steps_this_call = 0
    running_loss: list[float] = []
    consistent = [True]
    try:
        with _progress(console, s.quiet) as bar:
            task = bar.add_task(
                "training", total=total_steps, completed=progress_state["step"], loss=float("nan"), sps=0.0
            )
            while progress_state["epoch"] < s.epochs and not progress_state["stopped_early"]:
                epoch = progress_state["epoch"]
                batches = batches_for_epoch(lengths, s.batch_size, s.seed, epoch)
                while progress_state["batch"] < len(batches):
                    start = time.perf_counter()
                    first = progress_state["batch"]
                    group = batches[first : first + s.grad_accum]
                    n_in_group = sum(len(b) for b in group)
                    optimizer.zero_grad(set_to_none=True)
                    group_loss = 0.0
                    for ids in group:
                        batch = pad_batch([prepared.train[i] for i in ids], pad_id)
                        loss, _ = batch_loss(trainee, batch, kind)
                        (loss * len(ids) / n_in_group).backward()
                        group_loss += float(loss.detach()) * len(ids) / n_in_group
                    torch.nn.utils.clip_grad_norm_(list(trainee.trainable().values()), 1.0)
                    consistent[0] = False  # weights move ahead of the recorded progress until the lines below
                    optimizer.step()
                    scheduler.step()
                    elapsed = time.perf_counter() - start
                    progress_state["batch"] += len(group)
                    progress_state["step"] += 1
                    consistent[0] = True
                    progress_state["train_seconds"] += elapsed
                    progress_state["samples_seen"] += n_in_group
                    running_loss = [*running_loss[-19:], group_loss]
                    progress_state["last_train_loss"] = sum(running_loss) / len(running_loss)
                    steps_this_call += 1
                    bar.update(
                        task,
                        completed=progress_state["step"],
                        loss=progress_state["last_train_loss"],
                        sps=progress_state["samples_seen"] / max(1e-9, progress_state["train_seconds"]),
                    )
                    if s.eval_every and progress_state["step"] % s.eval_every == 0 and validate():
                        progress_state["stopped_early"] = True
                        break
                    if s.save_every and progress_state["step"] % s.save_every == 0:
                        save_checkpoint()
                    if s.stop_after_steps and steps_this_call >= s.stop_after_steps:
                        save_checkpoint()
                        raise StopRequested(f"stopped after {steps_this_call} steps; rerun to resume")
                else:
                    progress_state["epoch"] += 1
                    progress_state["batch"] = 0
                    if not s.eval_every and validate():
                        progress_state["stopped_early"] = True
                    save_checkpoint()
    except KeyboardInterrupt:
        # Ctrl-C: keep the progress made since the last checkpoint when the state is consistent.
        if consistent[0]:
            save_checkpoint()
        raise
    if best_state is not None:
        trainee.load_trainable_state(best_state)
    model.eval()
    final_val = evaluate_loss(trainee, prepared.val, kind, pad_id, s.batch_size)
    final_train = evaluate_loss(trainee, prepared.train[:TRAIN_LOSS_SAMPLE], kind, pad_id, s.batch_size)
    files = _save_outputs(trainee, lm, s, out)
    manifest = {
        "format": "vdata-debias-1",
        "base_model": s.model,
        "base_checkpoint": lm.checkpoint,
        "base_model_sha256": base_hash,
        "model_kind": kind,
        "method": s.method,
        "objective": s.objective,
        "seed": s.seed,
        "settings": s.fingerprint_fields(),
        "data": prepared.data_hashes,
        "counts": prepared.counts,
        "libraries": _library_versions(),
        "trainable_parameters": sum(p.numel() for p in trainee.trainable().values()),
        "losses": {
            "initial_val": initial_val,
            "initial_train": initial_train,
            "best_val": progress_state["best_val"] if prepared.val else None,
            "final_val": final_val,
            "final_train": final_train,
            "last_train_running": progress_state.get("last_train_loss"),
            "history": progress_state["history"],
        },
        "steps": progress_state["step"],
        "epochs_completed": progress_state["epoch"],
        "stopped_early": progress_state["stopped_early"],
        "train_seconds": progress_state["train_seconds"],
        "samples_per_second": progress_state["samples_seen"] / max(1e-9, progress_state["train_seconds"]),
        "resumed_from_step": resumed_from,
        "files": files,
        "fingerprint": fingerprint,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _atomic_write_text(manifest_path, json.dumps(manifest, indent=2, default=str))
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return RunResult(out, manifest, resumed_from)


def _save_outputs(trainee: Trainee, lm: Any, s: DebiasSettings, out: Path) -> list[str]:
    """Write the adapter/model; returns the written names. Runs before manifest.json."""
    if s.method == "lora":
        trainee.model.save_pretrained(str(out))
        names = ["adapter_config.json", "adapter_model.safetensors"]
        if s.merge:
            merged_tmp = out / ".merged.tmp"
            shutil.rmtree(merged_tmp, ignore_errors=True)
            merged = trainee.model.merge_and_unload()
            merged.save_pretrained(str(merged_tmp))
            lm.tokenizer.save_pretrained(str(merged_tmp))
            shutil.rmtree(out / "merged", ignore_errors=True)
            os.replace(merged_tmp, out / "merged")
            names.append("merged/")
        return names
    if s.method == "bottleneck":
        trainee.bottleneck.save(out)
        return ["bottleneck_config.json", "bottleneck_adapter.safetensors"]
    full_tmp = out / ".full.tmp"
    shutil.rmtree(full_tmp, ignore_errors=True)
    trainee.model.save_pretrained(str(full_tmp))
    lm.tokenizer.save_pretrained(str(full_tmp))
    shutil.rmtree(out / "full", ignore_errors=True)
    os.replace(full_tmp, out / "full")
    return ["full/"]


class _NullProgress:
    def __enter__(self) -> _NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(console: Any, quiet: bool) -> Any:
    if quiet:
        return _NullProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[sps]:.1f} samples/s"),
        TimeElapsedColumn(),
        console=console,
    )
