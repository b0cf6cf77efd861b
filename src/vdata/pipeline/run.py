"""Plan and run a pipeline in this process, then write one report (before/after table with CIs, data,
model, settings).

The pipeline is the one place besides the CLI that wires stages together: each step calls a stage's
library entry point (`generate`, `run_audit`, `run_model`, `run_debias`) with that stage's own settings
model, all of them built and validated by `build_plan` before the first step runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.audit.run import run_audit
from vdata.audit.settings import AuditSettings
from vdata.core.io import write_json_atomic, write_text_atomic
from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.settings import validate_settings
from vdata.debias.settings import DebiasSettings
from vdata.debias.train import run_debias
from vdata.evaluate.report import category_verdicts, comparison_rows, verdict_lines, write_results
from vdata.evaluate.runner import run_model
from vdata.evaluate.settings import EvalSettings
from vdata.generate.engine import generate
from vdata.generate.options import GenOptions
from vdata.pipeline.spec import PipelineSpec, spec_document
from vdata.pipeline.steps import Step, StepResult, StepRunner


@dataclass
class Plan:
    workdir: Path
    steps: list[Step]
    before: Path
    after: Path
    train_data: list[Path]


def _json(settings: Any) -> dict[str, Any]:
    return json.loads(settings.model_dump_json())


def build_plan(spec: PipelineSpec, spec_dir: Path, progress: ProgressFactory = no_progress) -> Plan:
    """Every step with its stage settings, built and validated now; writes nothing."""
    work = Path(spec.workdir) if spec.workdir else Path("runs") / spec.name
    work = work if work.is_absolute() else (spec_dir / work)
    data_dir = spec.data_dir
    steps: list[Step] = []
    datasets: list[Path] = []

    if spec.generate is not None:
        options = spec.generate.load(spec_dir)
        generated = work / "data" / "generated.jsonl"
        steps.append(
            Step(
                "generate",
                lambda: _generate(options, generated, progress),
                outputs=[generated],
                settings=_json(options),
            )
        )
        datasets.append(generated)
    datasets += [p if p.is_absolute() else spec_dir / p for p in map(Path, spec.data)]

    train_data = datasets
    if spec.audit is not None:
        section = spec.audit.model_dump(exclude_unset=True)
        clean = work / "data" / "clean.jsonl" if section.pop("filter", False) else None
        audit = validate_settings(
            AuditSettings,
            {"data_dir": data_dir, **section, "data": datasets, "out": work / "audit", "filter": clean},
            source="audit",
            prefix="audit.",
        )
        outputs = [audit.out / "report.json", *([clean] if clean else [])]
        train_data = [clean] if clean else datasets
        steps.append(
            Step(
                "audit",
                lambda: _audit(audit, progress),
                inputs=list(datasets),
                outputs=outputs,
                settings=_json(audit),
            )
        )

    evaluation = spec.eval
    if evaluation.data_dir is None and data_dir is not None:
        evaluation = evaluation.model_copy(update={"data_dir": Path(data_dir)})
    before = work / "eval" / "before.json"
    steps.append(
        Step(
            "eval-before",
            lambda: _evaluate(spec.model, evaluation, before, progress),
            inputs=_local_inputs(spec.model),
            outputs=[before],
            settings={"model": spec.model, **_json(evaluation)},
        )
    )
    model_dir = work / "model"
    debias = validate_settings(
        DebiasSettings,
        {
            "data_dir": data_dir,
            **spec.debias.model_dump(exclude_unset=True),
            "model": spec.model,
            "data": [str(p) for p in train_data],
            "out": str(model_dir),
        },
        source="debias",
        prefix="debias.",
    )
    steps.append(
        Step(
            "debias",
            lambda: _debias(debias, progress),
            inputs=[*train_data, *_local_inputs(spec.model)],
            outputs=[model_dir / "manifest.json"],
            settings=_json(debias),
        )
    )
    after = work / "eval" / "after.json"
    steps.append(
        Step(
            "eval-after",
            lambda: _evaluate(str(model_dir), evaluation, after, progress),
            inputs=[model_dir / "manifest.json"],
            outputs=[after],
            settings={"model": "debiased", **_json(evaluation)},
        )
    )
    return Plan(work, steps, before, after, train_data)


def _generate(options: GenOptions, out: Path, progress: ProgressFactory) -> str:
    summary = generate(options, out, progress=progress)  # no contribution offer inside a pipeline
    if not summary.complete:
        raise RuntimeError(
            f"generation stopped early ({summary.stop_reason or 'incomplete'}); rerun to resume"
        )
    return f"{summary.records} records written to {out}"


def _audit(settings: AuditSettings, progress: ProgressFactory) -> str:
    result = run_audit(settings, progress)
    kept = f"; {result['filter']['kept']} records kept in {settings.filter}" if result["filter"] else ""
    return f"report in {settings.out}{kept}"


def _evaluate(model: str, settings: EvalSettings, out: Path, progress: ProgressFactory) -> str:
    results, _ = run_model(model, settings, progress)
    write_results(results, out)
    return f"results in {out}"


def _debias(settings: DebiasSettings, progress: ProgressFactory) -> str:
    result = run_debias(settings, progress)
    resumed = f", resumed from step {result.resumed_from_step}" if result.resumed_from_step else ""
    return f"debiased model in {result.out}{resumed}"


def _local_inputs(model: str) -> list[Path]:
    p = Path(model)
    return [p] if p.exists() else []


def execute(plan: Plan, spec: PipelineSpec, echo: Any = print) -> Path:
    runner = StepRunner(plan.workdir, echo=echo)
    results = [runner.run(s) for s in plan.steps]
    return write_report(plan, spec, results)


# ---- report ---------------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, list):
        return f"[{x[0]:.2f}, {x[1]:.2f}]"
    if isinstance(x, float) and math.isnan(x):
        return "–"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def write_report(plan: Plan, spec: PipelineSpec, results: list[StepResult]) -> Path:
    before = json.loads(plan.before.read_text())
    after = json.loads(plan.after.read_text())
    rows = comparison_rows(before, after)
    manifest_path = plan.workdir / "model" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    lines = [
        f"# vdata run: {spec.name}",
        "",
        f"Model `{spec.model}` debiased into `{plan.workdir / 'model'}`.",
        "",
        "| metric | before | after | Δ | 95% CI before | 95% CI after | |SS−50| reduction | CIs separate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | {_fmt(r['before'])} | {_fmt(r['after'])} | {r['delta']:+.2f} | {_fmt(r['ci_before'])} "
            f"| {_fmt(r['ci_after'])} | {_fmt(r.get('bias_reduction_pct'))}{'%' if 'bias_reduction_pct' in r else ''} "
            f"| {'**yes**' if r['significant'] else 'no'} |"
        )
    lines += [
        "",
        "For SS and CrowS-Pairs 50 is unbiased; a change is marked when the intervals do not overlap.",
        "",
        *verdict_lines(rows),
        "",
        "## Data",
        "",
    ]
    lines += [f"- `{p}`" for p in plan.train_data]
    lines += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(spec_document(spec), indent=2),
        "```",
        "",
        "## Steps",
        "",
        "| step | status | wall s | fingerprint |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.status} | {r.wall_seconds:.1f} | `{r.fingerprint[:12]}` |" for r in results]
    if manifest:
        lines += [
            "",
            "## Debiasing manifest",
            "",
            "```json",
            json.dumps(manifest, indent=2, default=str)[:6000],
            "```",
        ]
    report = plan.workdir / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    summary = {
        "name": spec.name,
        "rows": rows,
        "verdicts": category_verdicts(rows),
        "steps": [r.__dict__ | {"log": str(r.log)} for r in results],
        "before": str(plan.before),
        "after": str(plan.after),
        "spec": spec_document(spec),
    }
    write_json_atomic(plan.workdir / "report.json", summary)
    return report
