"""The training run's phases on their own: schedule, batching, early stopping, checkpoint round trip,
reading inputs before any model is loaded, and the per-kind training behaviour."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.settings import validate_settings
from vdata.debias.labels import CAUSAL, MASKED, training_kind
from vdata.debias.loop import (
    Checkpoint,
    TrainingLoop,
    TrainingProgress,
    Verdict,
    batches_for_epoch,
    lr_lambda,
    total_steps,
)
from vdata.debias.prepare import read_training_data, split_examples
from vdata.debias.settings import DebiasSettings

HAN_S = "han2024-synthetic/Targeted_Debiasing/Gender/Synthetic_Gender_1S.json"


def settings(**values: object) -> DebiasSettings:
    return validate_settings(DebiasSettings, {"model": "m", "out": "o", **values}, source="test")


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    factor = lr_lambda(10, 2)
    assert [factor(step) for step in range(11)] == [
        0.5,
        1.0,
        1.0,
        7 / 8,
        6 / 8,
        5 / 8,
        0.5,
        3 / 8,
        2 / 8,
        1 / 8,
        0.0,
    ]
    assert lr_lambda(4, 0)(0) == 1.0


def test_total_steps_counts_partial_batches_and_groups() -> None:
    assert total_steps(25, 4, 2, 3) == 12  # 7 batches -> 4 steps per epoch
    assert total_steps(24, 4, 1, 1) == 6


def test_batches_cover_every_example_once_and_are_seeded() -> None:
    lengths = [i % 7 + 3 for i in range(103)]
    batches = batches_for_epoch(lengths, 8, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert sorted(len(b) for b in batches) == [7] + [8] * 12
    assert batches == batches_for_epoch(lengths, 8, seed=1, epoch=0)
    assert batches != batches_for_epoch(lengths, 8, seed=1, epoch=1)


def test_early_stopping_after_patience_evaluations_without_improvement() -> None:
    progress = TrainingProgress()
    verdicts = []
    for step, loss in enumerate([5.0, 4.0, 4.0 - 1e-7, 3.5, 3.6, 3.5], 1):
        progress.step = step
        verdicts.append(progress.record_validation(loss, patience=2))
    assert verdicts == [
        Verdict.IMPROVED,
        Verdict.IMPROVED,
        Verdict.NOT_IMPROVED,  # within MIN_IMPROVEMENT: not better
        Verdict.IMPROVED,
        Verdict.NOT_IMPROVED,
        Verdict.STOP,  # equal to the best is not better either
    ]
    assert progress.best_val == 3.5 and progress.bad_evals == 2
    assert [h["step"] for h in progress.history] == [1, 2, 3, 4, 5, 6]
    assert TrainingProgress().record_validation(math.nan, patience=0) is Verdict.STOP


def test_inputs_are_read_and_checked_before_any_model(data_dir: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists.json"
    lists.write_text(json.dumps({"gender": [["he", "she"], ["man", "woman"]]}))
    data = read_training_data(
        settings(data=[str(data_dir / HAN_S)], limit=20, cda="gender", word_lists=str(lists))
    )
    assert len(data.synthetic) == 20 and data.word_lists == {"gender": [("he", "she"), ("man", "woman")]}
    assert list(data.hashes) == [str(data_dir / HAN_S), str(lists)]
    with pytest.raises(UserError, match="no CDA word list for race"):
        read_training_data(settings(data=[str(data_dir / HAN_S)], cda="race", word_lists=str(lists)))
    train, val = split_examples(data, settings(data=["x"], val_fraction=0.1, cda="gender"))
    assert len(val) >= 2 and len(train) > 18  # the counterfactuals are added on each side of the split
    assert not {x.text for x in train} & {x.text for x in val}


def test_training_kind_is_chosen_once_by_name() -> None:
    import torch

    assert training_kind("causal") is CAUSAL and training_kind("masked") is MASKED
    with pytest.raises(UserError, match="cannot train a 'seq2seq' model"):
        training_kind("seq2seq")
    logits, labels = torch.zeros(2, 5, 11), torch.zeros(2, 5, dtype=torch.long)
    assert [t.shape[1] for t in CAUSAL.align(logits, labels)] == [4, 4]  # label i is predicted at i-1
    assert [t.shape[1] for t in MASKED.align(logits, labels)] == [5, 5]


def test_checkpoint_round_trip_resumes_the_loop(tiny_bert_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    import torch

    from vdata.debias.prepare import prepare
    from vdata.debias.trainee import build_trainee
    from vdata.lm.models import load_model

    s = settings(data=[str(data_dir / HAN_S)], limit=16, batch_size=4, max_length=24, epochs=2, lr=1e-2)
    state_file = tmp_path / "state.pt"

    def new_loop() -> TrainingLoop:
        lm = load_model(str(tiny_bert_dir))
        kind = training_kind(lm.kind)
        prepared = prepare(read_training_data(s), lm.tokenizer, kind, s)
        trainee = build_trainee(lm.model, lm.tokenizer, kind, s)
        return TrainingLoop(trainee, prepared.train, prepared.val, s, "fp", state_file)

    first = new_loop()
    first.start(None)
    first.optimizer_step(batches_for_epoch(first.lengths, s.batch_size, s.seed, 0)[0:1])
    first.progress.batch, first.progress.history = 1, [{"step": 1, "val_loss": 2.0}]
    first.save_checkpoint()
    loaded = Checkpoint.load(state_file)
    assert loaded.fingerprint == "fp" and loaded.progress == first.progress
    assert loaded.initial_val == first.initial_val and not math.isnan(loaded.initial_val)

    second = new_loop()
    second.start(loaded)
    assert second.resumed_from_step == 1 and second.progress == first.progress
    a, b = first.trainee.trainable_state(), second.trainee.trainable_state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert second.optimizer.state_dict()["state"].keys() == first.optimizer.state_dict()["state"].keys()
    assert second.scheduler.state_dict()["last_epoch"] == 1
