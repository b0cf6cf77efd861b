"""`vdata.benchmark/1` documents (what `vdata benchmark-dataset` writes) for the tests of the server's
benchmark history: the API, the badge and the home page chart."""

from __future__ import annotations

from typing import Any


def measured_category(
    cut: float, ci: list[float], verdict: str, *, ss_before: float = 62.0, ss_per_cut: float = 0.12
) -> dict[str, Any]:
    """A measured category whose StereoSet bias cut is `cut`% with interval `ci`."""
    return {
        "status": "measured",
        "reason": None,
        "train_records": 1000,
        "stereoset": {
            "split": "test",
            "ss_before": ss_before,
            "ss_after": ss_before - ss_per_cut * cut,
            "ss_ci_after": [55.0, 61.0],
            "bias_cut_pct": cut,
            "bias_cut_ci": ci,
            "lms_before": 90.0,
            "lms_after": 89.5,
        },
        "verdict": verdict,
    }


def skipped_category(reason: str = "fewer than 500 records") -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, "train_records": 0}


def benchmark_document(
    created: str, categories: dict[str, dict[str, Any]], snapshot_id: str | None = "20261101T000000Z"
) -> dict[str, Any]:
    return {
        "schema": "vdata.benchmark/1",
        "created": created,
        "source": {
            "kind": "snapshot",
            "snapshot_id": snapshot_id,
            "data_sha256": "ab" * 32,
            "records": 10_000,
        },
        "model": {"name": "SmolLM2-135M-Instruct", "sha256": "cd" * 32},
        "settings": {"epochs": 1},
        "versions": {"vdata": "test"},
        "audit": {"n_records": 10_000},
        "categories": categories,
    }
