"""The `vdata debias` training run: data -> examples -> batches -> adapter/model in DIR, resumable.

`run_debias` chains the phases, each testable on its own:
  1. `prepare.read_training_data`: read and check every input file (no model yet: bad input is cheap);
  2. load the model, choose its `TrainingKind`, `prepare.prepare` the encoded examples, fingerprint the run;
  3. `finished_manifest` / `unfinished_checkpoint`: a finished run is returned as it is, a checkpoint resumed;
  4. `trainee.build_trainee` + `loop.TrainingLoop`: train with early stopping and checkpoints;
  5. save the adapter/model, then `manifest.json`.

Order of work, so that bad input never leaves anything in DIR: every input is read and checked and the model
loaded before DIR is created. Progress is checkpointed in ``DIR/.checkpoint/state.pt`` (atomic replace);
rerunning the same command resumes from it. The adapter files are written next, and ``manifest.json`` last,
atomically: a DIR without manifest.json is an unfinished run, never a finished one.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.core.fingerprint import fingerprint
from vdata.core.io import write_json_atomic
from vdata.core.progress import ProgressFactory, no_progress
from vdata.debias.labels import training_kind
from vdata.debias.loop import Checkpoint, FinalLosses, TrainingLoop
from vdata.debias.prepare import Prepared, prepare, read_training_data
from vdata.debias.settings import DebiasSettings
from vdata.debias.trainee import Trainee, build_trainee

CHECKPOINT_DIR = ".checkpoint"
CHECKPOINT_FILE = "state.pt"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "vdata-debias-1"


@dataclass
class RunResult:
    out: Path
    manifest: dict[str, Any]
    resumed_from_step: int
    already_done: bool = False


def settings_fingerprint(s: DebiasSettings, data_hashes: dict[str, str], base_hash: str | None) -> str:
    """What identifies a run: its settings, the hashes of its input files and of the base model."""
    return fingerprint({"settings": s.fingerprint_fields(), "data": data_hashes, "base": base_hash})


def check_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose another path")


def finished_manifest(out: Path, run_fingerprint: str) -> dict[str, Any] | None:
    """The manifest of the same run finished in `out`, None when `out` holds no finished run; a UserError
    when it holds a different one."""
    path = out / MANIFEST
    if not path.exists():
        return None
    done = json.loads(path.read_text(encoding="utf-8"))
    if done.get("fingerprint") == run_fingerprint:
        return done
    raise UserError(
        f"{out} already holds a finished run with different settings or data; choose another --out "
        "or delete that directory"
    )


def unfinished_checkpoint(out: Path, run_fingerprint: str) -> Checkpoint | None:
    """The checkpoint of the same run interrupted in `out`, or None; a UserError for a different run."""
    path = out / CHECKPOINT_DIR / CHECKPOINT_FILE
    if not path.exists():
        return None
    checkpoint = Checkpoint.load(path)
    if checkpoint.fingerprint != run_fingerprint:
        raise UserError(
            f"{out} holds an unfinished run with different settings or data; rerun that exact command to "
            "resume it, or choose another --out"
        )
    return checkpoint


def library_versions() -> dict[str, str]:
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


def build_manifest(
    s: DebiasSettings,
    lm: Any,
    prepared: Prepared,
    trainee: Trainee,
    loop: TrainingLoop,
    final: FinalLosses,
    files: list[str],
    run_fingerprint: str,
) -> dict[str, Any]:
    """manifest.json of a finished run (its keys are documented in docs/debias.md)."""
    p = loop.progress
    return {
        "format": MANIFEST_FORMAT,
        "base_model": s.model,
        "base_checkpoint": lm.checkpoint,
        "base_model_sha256": lm.provenance.get("model_sha256"),
        "model_kind": trainee.kind.name,
        "method": s.method,
        "objective": s.objective,
        "seed": s.seed,
        "settings": s.fingerprint_fields(),
        "data": prepared.data_hashes,
        "counts": prepared.counts,
        "libraries": library_versions(),
        "trainable_parameters": sum(t.numel() for t in trainee.trainable().values()),
        "losses": {
            "initial_val": loop.initial_val,
            "initial_train": loop.initial_train,
            "best_val": p.best_val if prepared.val else None,
            "final_val": final.val,
            "final_train": final.train,
            "last_train_running": p.last_train_loss,
            "history": p.history,
        },
        "steps": p.step,
        "epochs_completed": p.epoch,
        "stopped_early": p.stopped_early,
        "train_seconds": p.train_seconds,
        "samples_per_second": p.samples_per_second(),
        "resumed_from_step": loop.resumed_from_step,
        "files": files,
        "fingerprint": run_fingerprint,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_debias(settings: DebiasSettings, progress: ProgressFactory = no_progress) -> RunResult:
    """Train per `settings` into `settings.out`, resuming from a checkpoint there; draws nothing unless
    `progress` does. Raises UserError on bad input (nothing written) and StopRequested after
    `stop_after_steps`."""
    from vdata.lm.models import load_model

    s = settings
    out = Path(s.out)
    check_output_dir(out)
    data = read_training_data(s)
    lm = load_model(s.model)
    kind = training_kind(lm.kind)
    kind.check_tokenizer(lm.tokenizer, s.model)
    prepared = prepare(data, lm.tokenizer, kind, s)
    run_fingerprint = settings_fingerprint(s, prepared.data_hashes, lm.provenance.get("model_sha256"))

    done = finished_manifest(out, run_fingerprint)
    if done is not None:
        return RunResult(out, done, resumed_from_step=-1, already_done=True)
    checkpoint = unfinished_checkpoint(out, run_fingerprint)
    checkpoint_dir = out / CHECKPOINT_DIR
    checkpoint_dir.mkdir(parents=True, exist_ok=True)

    trainee = build_trainee(lm.model, lm.tokenizer, kind, s)
    loop = TrainingLoop(
        trainee,
        prepared.train,
        prepared.val,
        s,
        run_fingerprint,
        checkpoint_dir / CHECKPOINT_FILE,
        anchors=prepared.anchors,
    )
    loop.start(checkpoint)
    loop.run(progress)
    final = loop.finish()

    files = trainee.save(out)
    manifest = build_manifest(s, lm, prepared, trainee, loop, final, files, run_fingerprint)
    write_json_atomic(out / MANIFEST, manifest)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return RunResult(out, manifest, loop.resumed_from_step)
