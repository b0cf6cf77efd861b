from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.evaluate.report import comparison_rows
from vdata.pipeline.run import build_plan
from vdata.pipeline.spec import load_spec
from vdata.pipeline.steps import Step, StepRunner


def test_every_section_is_validated_before_anything_runs(tmp_path: Path) -> None:
    """A mistyped key or a bad value in a late section fails at load, naming section and key."""
    p = tmp_path / "p.yaml"
    cases = {
        "debias: {epoch: 2}": "debias.epoch",
        "debias: {method: prefix}": "debias.method",
        "eval: {split: train}": "eval.split",
        "audit: {near_threshold: 7}": "audit.near_threshold",
        "generate: {options: {count: 0}}": "count",
    }
    for section, named in cases.items():
        p.write_text(f"name: x\ndata: [a.jsonl]\n{section}\n")
        with pytest.raises(UserError, match=named.replace(".", r"\.")):
            load_spec(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.yaml"]  # nothing was written


def test_plan_writes_nothing(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("name: quiet\ngenerate: {options: {count: 3}}\naudit: {filter: true}\n")
    plan = build_plan(load_spec(p), tmp_path)
    assert not plan.workdir.exists()
    assert [StepRunner(plan.workdir).status(s) for s in plan.steps] == ["to run"] * 5
    assert not plan.workdir.exists()  # --dry-run looks without writing


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
    assert after.settings["bias_types"] == ["gender"] and after.settings["limit"] == 10
    assert debias.settings["epochs"] == 1 and debias.settings["data"] == [str(audit.outputs[1])]


def _noop() -> str:
    return "nothing to do"


def test_fingerprint_changes_with_input_content(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("a")
    step = Step("s", _noop, inputs=[f], settings={"k": 1})
    fp1 = step.fingerprint()
    assert fp1 == step.fingerprint()
    f.write_text("b")
    assert step.fingerprint() != fp1
    assert Step("s", _noop, inputs=[f], settings={"k": 2}).fingerprint() != step.fingerprint()
    with pytest.raises(UserError, match="missing"):
        Step("t", _noop, inputs=[tmp_path / "nope"]).fingerprint()


def test_runner_skips_finished_steps_and_reruns_changed(tmp_path: Path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("one")
    calls: list[str] = []

    def copy() -> str:
        calls.append(source.read_text())
        out.write_text(source.read_text().upper())
        return "copied"

    step = Step("copy", copy, inputs=[source], outputs=[out])
    runner = StepRunner(tmp_path, echo=lambda *_: None)
    assert runner.run(step).status == "ran"
    assert out.read_text() == "ONE" and "copied" in (tmp_path / "steps" / "copy.log").read_text()
    assert runner.run(step).status == "skipped"
    source.write_text("two")
    assert runner.run(step).status == "ran" and calls == ["one", "two"]
    out.unlink()  # a missing output reruns the step too
    assert runner.run(step).status == "ran"

    def fail() -> str:
        raise UserError("the data file is empty")

    with pytest.raises(UserError, match="failed: the data file is empty"):
        runner.run(Step("bad", fail, outputs=[tmp_path / "never.txt"]))
    assert not (tmp_path / "steps" / "bad.json").exists()


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


def test_report_flags_a_trade_off(tmp_path: Path) -> None:
    from vdata.pipeline.run import Plan, write_report
    from vdata.pipeline.spec import PipelineSpec

    def block(ss: float, ss_ci: list[float], crows: float, crows_ci: list[float]) -> dict:
        return {
            "model": "m",
            "stereoset": {"intrasentence": {"race": {"SS": ss, "LMS": 88.0, "ICAT": 70.0, "ss_ci95": ss_ci}}},
            "crows_pairs": {"race-color": {"metric": crows, "ci95": crows_ci}},
        }

    (tmp_path / "before.json").write_text(json.dumps(block(60.01, [57.0, 63.0], 50.0, [45.7, 54.3])))
    (tmp_path / "after.json").write_text(json.dumps(block(48.37, [45.5, 51.3], 58.33, [54.45, 62.21])))
    plan = Plan(tmp_path, [], tmp_path / "before.json", tmp_path / "after.json", [])
    spec = PipelineSpec(name="t", data=["x.jsonl"])
    report = write_report(plan, spec, []).read_text()
    assert "**Not a win: race got more biased" in report and "**race: trade-off**" in report
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["verdicts"][0]["verdict"] == "trade-off"
    assert summary["verdicts"][0]["worse"] == ["CrowS-Pairs race-color"]
