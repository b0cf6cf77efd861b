"""Phase 2 of a run: the model being trained (LoRA, bottleneck adapter or full fine-tuning) and its loss.

One `Trainee` subclass per `--method` gives a uniform view: the trainable parameters (to optimise and
checkpoint), the frozen base model's logits (the `loss` mitigation's KL term) and the saved outputs.
"""

from __future__ import annotations

import copy
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vdata.debias.labels import IGNORE, Encoded, TrainingKind, pad_batch
from vdata.debias.settings import DebiasSettings


class Trainee(ABC):
    """The model being trained; subclasses add the adapter of one method."""

    def __init__(self, model: Any, tokenizer: Any, kind: TrainingKind, settings: DebiasSettings) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.settings = settings

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

    def logits(self, batch: dict[str, Any]) -> Any:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    @abstractmethod
    def base_logits(self, batch: dict[str, Any]) -> Any:
        """Logits of the frozen base model, for the KL terms (`loss` mitigation, `group_kl`)."""

    @abstractmethod
    def save(self, out: Path) -> list[str]:
        """Write the adapter or model into `out`; returns the written names."""


class LoraTrainee(Trainee):
    """peft LoRA; the base model is the same network with the adapter switched off."""

    def __init__(self, model: Any, tokenizer: Any, kind: TrainingKind, settings: DebiasSettings) -> None:
        from peft import LoraConfig, get_peft_model

        s = settings
        targets: Any = s.lora_targets if s.lora_targets == "all-linear" else s.lora_targets.split(",")
        config = LoraConfig(
            r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout, target_modules=targets
        )
        super().__init__(get_peft_model(model, config), tokenizer, kind, settings)

    def base_logits(self, batch: dict[str, Any]) -> Any:
        import torch

        with torch.no_grad(), self.model.disable_adapter():
            return self.logits(batch)

    def save(self, out: Path) -> list[str]:
        self.model.save_pretrained(str(out))
        names = ["adapter_config.json", "adapter_model.safetensors"]
        if self.settings.merge:
            merged = self.model.merge_and_unload()
            _replace_dir(out / "merged", lambda tmp: _save_model(merged, self.tokenizer, tmp))
            names.append("merged/")
        return names


class BottleneckTrainee(Trainee):
    """A Pfeiffer bottleneck adapter on a frozen model; the base model is the adapter switched off."""

    def __init__(self, model: Any, tokenizer: Any, kind: TrainingKind, settings: DebiasSettings) -> None:
        from vdata.lm.bottleneck import attach_bottleneck

        for p in model.parameters():
            p.requires_grad_(False)
        self.bottleneck = attach_bottleneck(model, settings.reduction_factor)
        super().__init__(model, tokenizer, kind, settings)

    def base_logits(self, batch: dict[str, Any]) -> Any:
        import torch

        with torch.no_grad():
            self.bottleneck.set_enabled(False)
            try:
                return self.logits(batch)
            finally:
                self.bottleneck.set_enabled(True)

    def save(self, out: Path) -> list[str]:
        self.bottleneck.save(out)
        return ["bottleneck_config.json", "bottleneck_adapter.safetensors"]


class FullTrainee(Trainee):
    """Full fine-tuning; the `loss` mitigation keeps a frozen copy of the model as its base."""

    def __init__(self, model: Any, tokenizer: Any, kind: TrainingKind, settings: DebiasSettings) -> None:
        self.base_copy: Any = None
        if "loss" in settings.mitigation or settings.group_kl > 0:
            self.base_copy = copy.deepcopy(model).eval()
            for p in self.base_copy.parameters():
                p.requires_grad_(False)
        super().__init__(model, tokenizer, kind, settings)

    def base_logits(self, batch: dict[str, Any]) -> Any:
        import torch

        with torch.no_grad():
            return self.base_copy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def save(self, out: Path) -> list[str]:
        _replace_dir(out / "full", lambda tmp: _save_model(self.model, self.tokenizer, tmp))
        return ["full/"]


TRAINEES: dict[str, type[Trainee]] = {
    "lora": LoraTrainee,
    "bottleneck": BottleneckTrainee,
    "full": FullTrainee,
}


def build_trainee(model: Any, tokenizer: Any, kind: TrainingKind, settings: DebiasSettings) -> Trainee:
    """The trainee of `settings.method`, its adapter initialised from `settings.seed`."""
    import torch

    torch.manual_seed(settings.seed)  # before adapters are created: their initialisation is seeded too
    return TRAINEES[settings.method](model, tokenizer, kind, settings)


def _save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _replace_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Write a folder beside `target` and rename it into place, so `target` is never half-written."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def batch_loss(trainee: Trainee, batch: dict[str, Any], with_mitigation: bool = True) -> tuple[Any, int]:
    """Mean token cross-entropy (synthetic tokens weighted by `synthetic_weight` under the `loss`
    mitigation) plus ``kl_coef`` x mean KL(base || model) over the synthetic samples' labelled tokens."""
    import torch
    import torch.nn.functional as F

    s = trainee.settings
    logits, labels = trainee.kind.align(trainee.logits(batch), batch["labels"])
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
        base, _ = trainee.kind.align(trainee.base_logits(batch), batch["labels"])
        loss = loss + s.kl_coef * kl_base_to_model(logits[syn_mask], base[syn_mask])
    return loss, n_tokens


def kl_base_to_model(logits: Any, base: Any) -> Any:
    """Mean over rows of KL(p_base || p_model), from (rows, vocab) logits."""
    import torch.nn.functional as F

    log_p = F.log_softmax(logits, dim=-1)
    log_q = F.log_softmax(base, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1).mean()


def anchor_kl(trainee: Trainee, batch: dict[str, Any]) -> Any:
    """Mean KL(base || model) of the distributions that predict the labelled (group-term) tokens of
    neutral anchor sentences: the `group_kl` term."""
    logits, labels = trainee.kind.align(trainee.logits(batch), batch["labels"])
    base, _ = trainee.kind.align(trainee.base_logits(batch), batch["labels"])
    mask = labels != IGNORE
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return kl_base_to_model(logits[mask], base[mask])


def evaluate_loss(trainee: Trainee, items: Sequence[Encoded], pad_id: int, batch_size: int) -> float:
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
            loss, n = batch_loss(trainee, batch, with_mitigation=False)
            total += float(loss) * n
            count += n
    trainee.model.train()
    return total / max(1, count)


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's padding id, else its end-of-sequence id, else 0 (padding is never labelled)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id) if tokenizer.eos_token_id is not None else 0
