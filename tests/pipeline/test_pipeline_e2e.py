"""`vdata run` end to end with real stages: Han et al. data -> audit+filter -> eval -> LoRA -> eval -> report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PIPELINE = """\
name: e2e
model: smollm2-135m
workdir: {work}
data: [{data}]
audit: {{filter: true, plots: false, embed_sample: 0, sample: 50}}
debias: {{method: lora, objective: sentence, limit: 24, epochs: 1, batch_size: 8, max_length: 32}}
eval: {{benchmarks: [crows_pairs], bias_types: [gender], limit: 8}}
"""


def run(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vdata.cli", "run", str(spec)], capture_output=True, text=True, timeout=1500
    )


def test_pipeline_runs_every_stage_then_skips_them(tmp_path: Path, data_dir: Path) -> None:
    han = data_dir / "han2024-synthetic" / "Targeted_Debiasing" / "Gender" / "Synthetic_Gender_1S.json"
    spec = tmp_path / "p.yaml"
    spec.write_text(PIPELINE.format(work=tmp_path / "work", data=han))
    first = run(spec)
    assert first.returncode == 0, first.stdout + first.stderr
    work = tmp_path / "work"
    report = (work / "report.md").read_text()
    assert "CrowS-Pairs gender" in report and "| debias | ran |" in report
    summary = json.loads((work / "report.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["ran"] * 4
    assert (work / "data" / "clean.jsonl").stat().st_size > 0
    manifest = json.loads((work / "model" / "manifest.json").read_text())
    assert manifest["base_model"] == "smollm2-135m"
    after = json.loads((work / "eval" / "after.json").read_text())
    assert after["crows_pairs"]["gender"]["n"] == 8

    second = run(spec)
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads((work / "report.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["skipped"] * 4
