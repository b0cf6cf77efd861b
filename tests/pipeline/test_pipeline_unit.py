from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.pipeline.run import build_plan, comparison_rows
from vdata.pipeline.spec import as_flags, load_spec
from vdata.pipeline.steps import Step, StepRunner


def test_as_flags() -> None:
    assert as_flags({"bias_types": ["gender", "race"], "merge": True, "limit": 5, "x": None, "y": False}) == [
        "--bias-types",
        "gender,race",
        "--merge",
        "--limit",
        "5",
    ]


def test_spec_errors_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("name: x\nbogus: 1\ndata: [a.jsonl]\n")
    with pytest.raises(UserError, match="bogus"):
        load_spec(p)
    p.write_text("name: x\n")
    with pytest.raises(UserError, match="no data"):
        load_spec(p)
    p.write_text("name: x\ngenerate: {}\n")
    with pytest.raises(UserError, match="exactly one"):
        load_spec(p)
    with pytest.raises(UserError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")


def test_plan_chains_outputs_to_inputs(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(
        "name: demo\ngenerate: {options: {count: 3}}\naudit: {filter: true}\n"
        "debias: {epochs: 1}\neval: {limit: 10, bias_types: [gender]}\n"
    )
    plan = build_plan(load_spec(p), tmp_path)
    names = [s.name for s in plan.steps]
    assert names == ["generate", "audit", "eval-before", "debias", "eval-after"]
    gen, audit, _, debias, after = plan.steps
    assert audit.inputs == gen.outputs
    assert debias.inputs[0] == audit.outputs[1]  # trains on the filtered data
    assert after.inputs == debias.outputs
    assert "--bias-types" in after.argv and "gender" in after.argv


def test_fingerprint_changes_with_input_content(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("a")
    step = Step("s", ["x"], inputs=[f])
    fp1 = step.fingerprint()
    assert fp1 == step.fingerprint()
    f.write_text("b")
    assert step.fingerprint() != fp1
    with pytest.raises(UserError, match="missing"):
        Step("t", ["x"], inputs=[tmp_path / "nope"]).fingerprint()


def test_runner_skips_finished_steps_and_reruns_changed(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    # A real vdata command that writes a file: `vdata run --dry-run` of a tiny pipeline prints the plan.
    spec = tmp_path / "p.yaml"
    spec.write_text("name: t\ndata: [d.jsonl]\n")
    (tmp_path / "d.jsonl").write_text("")
    step = Step(
        "plan", ["run", str(spec), "--dry-run"], inputs=[spec], outputs=[tmp_path / "steps" / "plan.log"]
    )
    runner = StepRunner(tmp_path, echo=lambda *_: None)
    assert runner.run(step).status == "ran"
    assert "debias" in (tmp_path / "steps" / "plan.log").read_text()
    assert runner.run(step).status == "skipped"
    spec.write_text("name: t2\ndata: [d.jsonl]\n")
    assert runner.run(step).status == "ran"
    failing = Step("bad", ["run", str(tmp_path / "missing.yaml")], outputs=[out])
    with pytest.raises(UserError, match="failed"):
        runner.run(failing)


def test_comparison_rows_mark_separated_intervals() -> None:
    before = {
        "stereoset": {
            "intrasentence": {"gender": {"SS": 62.0, "LMS": 90.0, "ICAT": 68.4, "ss_ci95": [60, 64]}}
        },
        "crows_pairs": {"gender": {"metric": 57.0, "ci95": [51, 63]}},
        "perplexity": 20.0,
    }
    after = {
        "stereoset": {
            "intrasentence": {"gender": {"SS": 55.0, "LMS": 89.5, "ICAT": 80.5, "ss_ci95": [53, 57]}}
        },
        "crows_pairs": {"gender": {"metric": 55.0, "ci95": [49, 61]}},
        "perplexity": 21.0,
    }
    rows = {r["metric"]: r for r in comparison_rows(before, after)}
    ss = rows["StereoSet gender SS"]
    assert ss["significant"] and ss["delta"] == pytest.approx(-7.0)
    assert ss["bias_reduction_pct"] == pytest.approx(100 * (12 - 5) / 12)
    assert not rows["CrowS-Pairs gender"]["significant"]
    assert "bias_reduction_pct" not in rows["StereoSet gender LMS"]
    assert rows["Perplexity"]["delta"] == pytest.approx(1.0)
    json.dumps(list(rows.values()))
