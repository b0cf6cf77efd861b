"""Phase 3 of a run: the training loop with its batching, learning-rate schedule, early stopping and checkpoints.

Everything a resumed run needs is in a `Checkpoint` (``DIR/.checkpoint/state.pt``, replaced atomically):
the trainable weights, optimizer and scheduler state, the `TrainingProgress`, the best weights so far and the
torch RNG state, so that a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from vdata.core.io import atomic_path
from vdata.core.progress import ProgressFactory, ProgressTask, no_progress
from vdata.debias.labels import Encoded, pad_batch
from vdata.debias.settings import DebiasSettings
from vdata.debias.trainee import Trainee, anchor_kl, batch_loss, evaluate_loss, pad_token_id

BUCKET_BATCHES = 50  # batches per length-sorted chunk
MIN_IMPROVEMENT = 1e-6  # a held-out loss must beat the best by this much to count as better
GRADIENT_CLIP = 1.0
RUNNING_LOSS_STEPS = 20  # steps averaged into the reported training loss
TRAIN_LOSS_SAMPLE = 128  # training examples whose loss is reported before and after (a cheap diagnostic)


class StopRequested(Exception):
    """Raised after `stop_after_steps` optimizer steps; the checkpoint on disk resumes the run."""


def batches_for_epoch(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-bucketed batches: shuffle, sort by length inside chunks of 50 batches, shuffle the batches."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def total_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: int) -> int:
    """Optimizer steps of a whole run (the last group of an epoch may hold fewer batches)."""
    batches_per_epoch = math.ceil(n_examples / batch_size)
    return math.ceil(batches_per_epoch / grad_accum) * epochs


def lr_lambda(total: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up over `warmup_steps`, then linear decay to zero."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    return factor


class Verdict(Enum):
    """What one held-out evaluation means for early stopping."""

    IMPROVED = "improved"
    NOT_IMPROVED = "not improved"
    STOP = "stop"


@dataclass
class TrainingProgress:
    """Where a run is: position in the data, step count, early-stopping state, timings (checkpointed)."""

    epoch: int = 0
    batch: int = 0  # next batch of the current epoch
    step: int = 0
    best_val: float = math.inf
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_seen: int = 0
    stopped_early: bool = False
    last_train_loss: float | None = None

    def record_validation(self, val_loss: float, patience: int) -> Verdict:
        """Record a held-out loss; STOP after `patience` evaluations in a row without improvement."""
        self.history.append({"step": self.step, "val_loss": val_loss})
        if val_loss < self.best_val - MIN_IMPROVEMENT:
            self.best_val = val_loss
            self.bad_evals = 0
            return Verdict.IMPROVED
        self.bad_evals += 1
        return Verdict.STOP if self.bad_evals >= patience else Verdict.NOT_IMPROVED

    def samples_per_second(self) -> float:
        return self.samples_seen / max(1e-9, self.train_seconds)


@dataclass
class Checkpoint:
    """The state of an unfinished run, keyed by the run's fingerprint."""

    fingerprint: str
    trainable: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    progress: TrainingProgress
    best_state: dict[str, Any] | None
    initial_val: float
    initial_train: float
    torch_rng: Any

    def save(self, path: Path) -> None:
        import torch

        snapshot = {
            "fingerprint": self.fingerprint,
            "trainable": self.trainable,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "progress": asdict(self.progress),
            "best_state": self.best_state,
            "initial_val": self.initial_val,
            "initial_train": self.initial_train,
            "torch_rng": self.torch_rng,
        }
        with atomic_path(path) as tmp:
            torch.save(snapshot, tmp)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        import torch

        state = torch.load(path, weights_only=False)
        return cls(
            fingerprint=state["fingerprint"],
            trainable=state["trainable"],
            optimizer=state["optimizer"],
            scheduler=state["scheduler"],
            progress=TrainingProgress(**state["progress"]),
            best_state=state.get("best_state"),
            initial_val=state["initial_val"],
            initial_train=state["initial_train"],
            torch_rng=state["torch_rng"],
        )


@dataclass
class FinalLosses:
    val: float
    train: float


class TrainingLoop:
    """AdamW with a warm-up/decay schedule over length-bucketed batches, early stopping on the held-out
    loss (best weights kept), checkpoints every `save_every` steps and at each epoch's end."""

    def __init__(
        self,
        trainee: Trainee,
        train: Sequence[Encoded],
        val: Sequence[Encoded],
        settings: DebiasSettings,
        fingerprint: str,
        state_file: Path,
        anchors: Sequence[Encoded] = (),
    ) -> None:
        import torch

        self.trainee, self.train, self.val, self.settings = trainee, train, val, settings
        self.anchors = anchors
        self.fingerprint, self.state_file = fingerprint, state_file
        trainee.model.train()
        self.pad_id = pad_token_id(trainee.tokenizer)
        self.lengths = [len(x.input_ids) for x in train]
        s = settings
        self.total_steps = total_steps(len(train), s.batch_size, s.grad_accum, s.epochs)
        self.optimizer = torch.optim.AdamW(
            list(trainee.trainable().values()), lr=s.learning_rate(), weight_decay=s.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, round(self.total_steps * s.warmup_ratio))
        )
        self.progress = TrainingProgress()
        self.best_state: dict[str, Any] | None = None
        self.initial_val = math.nan
        self.initial_train = math.nan
        self.resumed_from_step = 0
        # False while the weights have moved ahead of the recorded progress (mid optimizer step).
        self.consistent = True
        self.running_loss: list[float] = []

    def start(self, checkpoint: Checkpoint | None) -> None:
        """Restore `checkpoint`, or measure the losses before training."""
        import torch

        if checkpoint is None:
            self.initial_val = self.evaluate(self.val)
            self.initial_train = self.evaluate(self.train[:TRAIN_LOSS_SAMPLE])
            return
        self.trainee.load_trainable_state(checkpoint.trainable)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.scheduler.load_state_dict(checkpoint.scheduler)
        self.progress = checkpoint.progress
        self.best_state = checkpoint.best_state
        self.initial_val, self.initial_train = checkpoint.initial_val, checkpoint.initial_train
        torch.set_rng_state(checkpoint.torch_rng)
        self.resumed_from_step = self.progress.step

    def evaluate(self, items: Sequence[Encoded]) -> float:
        return evaluate_loss(self.trainee, items, self.pad_id, self.settings.batch_size)

    def checkpoint(self) -> Checkpoint:
        import torch

        return Checkpoint(
            fingerprint=self.fingerprint,
            trainable=self.trainee.trainable_state(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            progress=self.progress,
            best_state=self.best_state,
            initial_val=self.initial_val,
            initial_train=self.initial_train,
            torch_rng=torch.get_rng_state(),
        )

    def save_checkpoint(self) -> None:
        self.checkpoint().save(self.state_file)

    def run(self, progress: ProgressFactory = no_progress) -> None:
        """Train until the last epoch or early stopping; raises StopRequested after `stop_after_steps`."""
        try:
            with progress("training", self.total_steps, "steps") as task:
                task.update(completed=self.progress.step)
                self._epochs(task)
        except KeyboardInterrupt:
            # Ctrl-C: keep the progress made since the last checkpoint when the state is consistent.
            if self.consistent:
                self.save_checkpoint()
            raise

    def _epochs(self, task: ProgressTask) -> None:
        s, p = self.settings, self.progress
        steps_this_call = 0
        while p.epoch < s.epochs and not p.stopped_early:
            batches = batches_for_epoch(self.lengths, s.batch_size, s.seed, p.epoch)
            while p.batch < len(batches):
                self.optimizer_step(batches[p.batch : p.batch + s.grad_accum])
                steps_this_call += 1
                info = f"loss {p.last_train_loss:.4f}, {p.samples_per_second():.1f} samples/s"
                task.update(completed=p.step, info=info)
                if s.eval_every and p.step % s.eval_every == 0 and self.validate():
                    p.stopped_early = True
                    break
                if s.save_every and p.step % s.save_every == 0:
                    self.save_checkpoint()
                if s.stop_after_steps and steps_this_call >= s.stop_after_steps:
                    self.save_checkpoint()
                    raise StopRequested(f"stopped after {steps_this_call} steps; rerun to resume")
            else:
                p.epoch += 1
                p.batch = 0
                if not s.eval_every and self.validate():
                    p.stopped_early = True
                self.save_checkpoint()

    def optimizer_step(self, group: list[list[int]]) -> None:
        """One optimizer step over `group` (grad_accum batches), each batch weighted by its size."""
        import torch

        p = self.progress
        start = time.perf_counter()
        n_in_group = sum(len(b) for b in group)
        self.optimizer.zero_grad(set_to_none=True)
        group_loss = 0.0
        for k, ids in enumerate(group):
            batch = pad_batch([self.train[i] for i in ids], self.pad_id)
            loss, _ = batch_loss(self.trainee, batch)
            if self.anchors and self.settings.group_kl > 0:
                anchors = pad_batch(self.anchor_batch(p.step * len(group) + k), self.pad_id)
                loss = loss + self.settings.group_kl * anchor_kl(self.trainee, anchors)
            (loss * len(ids) / n_in_group).backward()
            group_loss += float(loss.detach()) * len(ids) / n_in_group
        torch.nn.utils.clip_grad_norm_(list(self.trainee.trainable().values()), GRADIENT_CLIP)
        self.consistent = False
        self.optimizer.step()
        self.scheduler.step()
        elapsed = time.perf_counter() - start
        p.batch += len(group)
        p.step += 1
        self.consistent = True
        p.train_seconds += elapsed
        p.samples_seen += n_in_group
        self.running_loss = [*self.running_loss[-(RUNNING_LOSS_STEPS - 1) :], group_loss]
        p.last_train_loss = sum(self.running_loss) / len(self.running_loss)

    def anchor_batch(self, number: int) -> list[Encoded]:
        """The `number`-th batch of anchor sentences, cycling through them: a function of the step, so a
        resumed run sees the same anchors."""
        n = len(self.anchors)
        size = min(self.settings.batch_size, n)
        return [self.anchors[(number * size + j) % n] for j in range(size)]

    def validate(self) -> bool:
        """Record a held-out loss (keeping the best weights); True when early stopping says stop."""
        if not self.val:
            return False
        verdict = self.progress.record_validation(self.evaluate(self.val), self.settings.patience)
        if verdict is Verdict.IMPROVED:
            self.best_state = self.trainee.trainable_state()
        return verdict is Verdict.STOP

    def finish(self) -> FinalLosses:
        """Keep the best weights, switch to eval mode, and measure the final losses."""
        if self.best_state is not None:
            self.trainee.load_trainable_state(self.best_state)
        self.trainee.model.eval()
        return FinalLosses(self.evaluate(self.val), self.evaluate(self.train[:TRAIN_LOSS_SAMPLE]))
