"""`vdata benchmark-dataset`'s parts without a model: sources, sampling, skip reasons, verdicts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.io import write_records
from vdata.core.records import Record
from vdata.pipeline.benchmark_dataset import load_history
from vdata.pipeline.benchmark_effect import skip_reason, stratified_sample, verdict
from vdata.pipeline.benchmark_settings import RECOMMENDED_TRAINING, BenchmarkSettings
from vdata.pipeline.benchmark_source import read_source


def records(category: str, targets: dict[str, int]) -> list[Record]:
    return [
        Record(
            text=f"The {t} number {i} is a gifted {category} engineer.",
            target=t,
            attribute="gifted",
            category=category,
        )
        for t, n in targets.items()
        for i in range(n)
    ]


def test_stratified_sample_keeps_each_target_share_and_is_seeded() -> None:
    pool = records("gender", {"woman": 60, "man": 30, "mother": 10})
    chosen = stratified_sample(pool, 20, seed=0)
    assert Counter(r.target for r in chosen) == {"woman": 12, "man": 6, "mother": 2}
    assert [r.id for r in stratified_sample(pool, 20, seed=0)] == [r.id for r in chosen]
    assert [r.id for r in stratified_sample(pool, 20, seed=1)] != [r.id for r in chosen]
    assert len(stratified_sample(pool, 500, seed=0)) == 100  # fewer than asked: all of them


def test_stratified_sample_gives_the_leftover_to_the_largest_remainders() -> None:
    pool = records("race", {"a": 5, "b": 3, "c": 2})  # 7 of 10: exact 3.5, 2.1, 1.4
    assert Counter(r.target for r in stratified_sample(pool, 7, seed=0)) == {"a": 4, "b": 2, "c": 1}


@pytest.mark.parametrize(
    ("category", "count", "expected"),
    [
        ("gender", 500, None),
        ("gender", 10, "10 clean records, fewer than --min-records 200"),
        ("age", 900, "StereoSet has no age domain"),
        ("race+gender", 900, "intersectional category"),
        ("uncategorised", 900, "records without a category"),
    ],
)
def test_skip_reason(category: str, count: int, expected: str | None) -> None:
    reason = skip_reason(category, count, 200)
    assert reason == expected if expected is None else expected in (reason or "")


@pytest.mark.parametrize(
    ("stereoset", "crows", "expected"),
    [
        ("better", "none", "debiases"),
        ("none", "better", "debiases"),
        ("better", "better", "debiases"),
        ("better", "worse", "trade-off"),
        ("worse", "better", "trade-off"),
        ("worse", "none", "worse"),
        ("none", "none", "no effect"),
    ],
)
def test_verdict(stereoset: str, crows: str, expected: str) -> None:
    assert verdict(stereoset, crows) == expected  # type: ignore[arg-type]


def test_recommended_training_is_the_measured_best_setting() -> None:
    # docs/results.md: bottleneck adapter, reduction factor 16, lr 3e-4, one epoch, batch 16, 40 tokens, seed 0,
    # attribute objective
    t = BenchmarkSettings(source="x.jsonl", out=Path("o")).training
    assert (t.method, t.reduction_factor, t.learning_rate(), t.epochs, t.batch_size, t.max_length, t.seed) == (
        "bottleneck", 16, 3e-4, 1, 16, 40, 0,
    )  # fmt: skip
    assert (t.objective, t.balance_groups, t.group_kl) == ("attribute", 0, 0.0)
    assert t == RECOMMENDED_TRAINING


# ---- sources -------------------------------------------------------------------------------------------


def _db_with_approved(url: str, approved: list[Record], pending: list[Record]) -> None:
    from sqlalchemy import update

    from vdata.server import db, store
    from vdata.server.db import record_store

    engine = db.make_engine(url)
    db.upgrade(engine)
    ids = store.put_records(engine, approved, "tester").accepted
    store.put_records(engine, pending, "tester")
    with engine.begin() as conn:
        conn.execute(
            update(record_store)
            .where(record_store.c.id.in_(ids))
            .values(
                status="approved", submitted_at="2025-12-31T00:00:00Z", moderated_at="2026-01-01T00:00:00Z"
            )
        )
    engine.dispose()


def test_database_snapshot_and_files_give_the_same_data(tmp_path: Path) -> None:
    from vdata.server.snapshot import make_settings, take_snapshot

    approved = records("gender", {"woman": 7, "man": 5}) + records("religion", {"Hindu": 4})
    pending = records("race", {"Black": 3})
    url = f"sqlite:///{tmp_path / 'v.db'}"
    _db_with_approved(url, approved, pending)
    root = tmp_path / "snapshots"
    manifest = take_snapshot(
        make_settings(db_url=url, out_dir=root, settle_s=0), now=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert manifest is not None
    files = tmp_path / "approved.jsonl"
    write_records(approved[::-1], files)  # another order: the canonical order makes it the same data

    from_db = read_source(url)
    from_snapshot = read_source(str(root / manifest["snapshot_id"]))
    from_root = read_source(str(root))  # a folder of snapshots: the latest
    from_files = read_source(str(files))
    assert (from_db.kind, from_snapshot.kind, from_files.kind) == ("database", "snapshot", "files")
    assert from_snapshot.snapshot_id == from_root.snapshot_id == manifest["snapshot_id"]
    assert from_db.snapshot_id is None and from_files.snapshot_id is None
    hashes = {s.data_sha256() for s in (from_db, from_snapshot, from_root, from_files)}
    assert len(hashes) == 1
    assert from_db.by_category() == {"gender": 12, "religion": 4}  # the pending race records are not read


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{tmp}/missing.jsonl", "does not exist"),
        ("{tmp}/notes.txt", "not a record file"),
        ("ftp://example.org/x", "unknown database URL scheme"),
        ("{tmp}", "no snapshot (manifest.json) and no record files"),
        ("sqlite:///{tmp}/empty.db", "cannot read approved records"),
    ],
)
def test_bad_source_is_a_clear_error(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(UserError, match="SOURCE") as info:
        read_source(source.format(tmp=tmp_path))
    assert message in str(info.value)


def test_history_must_be_benchmark_documents(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "benchmark.json").write_text(
        json.dumps({"schema": "vdata.benchmark/1", "created": "b"})
    )
    (tmp_path / "older.json").write_text(json.dumps({"schema": "vdata.benchmark/1", "created": "a"}))
    assert [d["created"] for d in load_history([tmp_path / "old", tmp_path / "older.json"])] == ["a", "b"]
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(UserError, match=r"not a vdata\.benchmark/1 document"):
        load_history([tmp_path / "other.json"])
    with pytest.raises(UserError, match="no such file"):
        load_history([tmp_path / "nowhere.json"])
    (tmp_path / "runs" / "b").mkdir(parents=True)
    (tmp_path / "runs" / "a").mkdir()
    (tmp_path / "runs" / "b" / "benchmark.json").write_text(
        json.dumps({"schema": "vdata.benchmark/1", "created": "y"})
    )
    (tmp_path / "runs" / "a" / "benchmark.json").write_text(
        json.dumps({"schema": "vdata.benchmark/1", "created": "x"})
    )
    # A folder of run folders: each run; this run's own earlier file is not its history.
    assert [d["created"] for d in load_history([tmp_path / "runs"])] == ["x", "y"]
    assert [
        d["created"] for d in load_history([tmp_path / "runs"], tmp_path / "runs" / "b" / "benchmark.json")
    ] == ["x"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no benchmark\.json in it"):
        load_history([tmp_path / "empty"])


def test_cli_bad_source_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "benchmark-dataset",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    message = " ".join(run.stderr.split())  # the console wraps long lines
    assert "does not exist" in message and "database URL" in message
    assert not out.exists()


def _doc(created: str, ss_after: float | None, ci: list[float | None]) -> dict[str, object]:
    stereoset_block = {"ss_before": 60.0, "ss_after": ss_after, "ss_ci_after": ci, "bias_cut_pct": None,
                       "bias_cut_ci": [None, None]}  # fmt: skip
    return {
        "created": created,
        "source": {"snapshot_id": None},
        "model": {"name": "m"},
        "categories": {"gender": {"status": "measured", "stereoset": stereoset_block}},
    }


def test_history_plot_draws_past_runs_with_undefined_figures(tmp_path: Path) -> None:
    from vdata.pipeline.benchmark_report import history_plot

    history = [
        _doc("2026-01-01T00:00:00Z", 61.0, [None, None]),
        _doc("2026-01-08T00:00:00Z", 58.0, [52.0, 64.0]),
    ]
    assert history_plot(history, _doc("2026-01-15T00:00:00Z", 55.0, [49.0, None]), tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    undefined = _doc("2026-01-15T00:00:00Z", None, [None, None])
    assert not history_plot([undefined], undefined, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
