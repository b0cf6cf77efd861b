"""Plan and run a pipeline, then write one report (before/after table with CIs, data, model, settings)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.core.io import atomic_path
from vdata.pipeline.spec import PipelineSpec, as_flags
from vdata.pipeline.steps import Step, StepResult, StepRunner


@dataclass
class Plan:
    workdir: Path
    steps: list[Step]
    before: Path
    after: Path
    train_data: list[Path]


def build_plan(spec: PipelineSpec, spec_dir: Path) -> Plan:
    work = Path(spec.workdir) if spec.workdir else Path("runs") / spec.name
    work = work if work.is_absolute() else (spec_dir / work)
    data_flags = ["--data-dir", spec.data_dir] if spec.data_dir else []
    steps: list[Step] = []
    datasets: list[Path] = []

    if spec.generate is not None:
        if spec.generate.options_file:
            options_path = Path(spec.generate.options_file)
            options_path = options_path if options_path.is_absolute() else spec_dir / options_path
        else:
            options_path = work / "gen-options.json"
            options_path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(spec.generate.options, indent=2, sort_keys=True)
            if not options_path.exists() or options_path.read_text() != text:
                options_path.write_text(text)
        generated = work / "data" / "generated.jsonl"
        steps.append(
            Step(
                "generate",
                ["gen", str(generated), str(options_path), "--quiet"],
                inputs=[options_path],
                outputs=[generated],
            )
        )
        datasets.append(generated)
    datasets += [p if p.is_absolute() else spec_dir / p for p in map(Path, spec.data)]

    train_data = datasets
    if spec.audit is not None:
        audit_opts = dict(spec.audit)
        do_filter = bool(audit_opts.pop("filter", False))
        audit_dir = work / "audit"
        argv = ["audit", *map(str, datasets), "--out", str(audit_dir), *as_flags(audit_opts), *data_flags]
        outputs = [audit_dir / "report.json"]
        if do_filter:
            clean = work / "data" / "clean.jsonl"
            argv += ["--filter", str(clean)]
            outputs.append(clean)
            train_data = [clean]
        steps.append(Step("audit", argv, inputs=list(datasets), outputs=outputs, config=spec.audit))

    eval_flags = [*as_flags(spec.eval), *data_flags]
    before = work / "eval" / "before.json"
    steps.append(
        Step(
            "eval-before",
            ["eval", spec.model, "--out", str(before), "--quiet", *eval_flags],
            inputs=_local_inputs(spec.model),
            outputs=[before],
            config=spec.eval,
        )
    )
    model_dir = work / "model"
    steps.append(
        Step(
            "debias",
            [
                "debias",
                spec.model,
                *map(str, train_data),
                "--out",
                str(model_dir),
                *as_flags(spec.debias),
                *data_flags,
            ],
            inputs=[*train_data, *_local_inputs(spec.model)],
            outputs=[model_dir / "manifest.json"],
            config=spec.debias,
        )
    )
    after = work / "eval" / "after.json"
    steps.append(
        Step(
            "eval-after",
            ["eval", str(model_dir), "--out", str(after), "--quiet", *eval_flags],
            inputs=[model_dir / "manifest.json"],
            outputs=[after],
            config=spec.eval,
        )
    )
    return Plan(work, steps, before, after, train_data)


def _local_inputs(model: str) -> list[Path]:
    p = Path(model)
    return [p] if p.exists() else []


def execute(plan: Plan, spec: PipelineSpec, echo: Any = print) -> Path:
    runner = StepRunner(plan.workdir, echo=echo)
    results = [runner.run(s) for s in plan.steps]
    return write_report(plan, spec, results)


# ---- report ---------------------------------------------------------------------------------------------


def _ci_overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    if not a or not b:
        return None
    return not (a[1] < b[0] or b[1] < a[0])


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of (metric, before, after, delta, ci's, significant) for every metric both results share."""
    rows: list[dict[str, Any]] = []
    sb = (before.get("stereoset") or {}).get("intrasentence") or {}
    sa = (after.get("stereoset") or {}).get("intrasentence") or {}
    for domain in [d for d in sb if d in sa]:
        for key, ci_key in (("SS", "ss_ci95"), ("LMS", None), ("ICAT", None)):
            if key in sb[domain] and key in sa[domain]:
                rows.append(
                    _row(
                        f"StereoSet {domain} {key}",
                        sb[domain][key],
                        sa[domain][key],
                        sb[domain].get(ci_key) if ci_key else None,
                        sa[domain].get(ci_key) if ci_key else None,
                    )
                )
    cb, ca = before.get("crows_pairs") or {}, after.get("crows_pairs") or {}
    for btype in [t for t in cb if t in ca and isinstance(cb[t], dict) and "metric" in cb[t]]:
        rows.append(
            _row(
                f"CrowS-Pairs {btype}",
                cb[btype]["metric"],
                ca[btype]["metric"],
                cb[btype].get("ci95"),
                ca[btype].get("ci95"),
            )
        )
    if isinstance(before.get("perplexity"), int | float) and isinstance(after.get("perplexity"), int | float):
        rows.append(_row("Perplexity", before["perplexity"], after["perplexity"], None, None))
    return rows


def _row(name: str, b: float, a: float, cib: list[float] | None, cia: list[float] | None) -> dict[str, Any]:
    overlap = _ci_overlap(cib, cia)
    row = {
        "metric": name,
        "before": b,
        "after": a,
        "delta": a - b,
        "ci_before": cib,
        "ci_after": cia,
        "significant": (overlap is False),
    }
    # For bias scores where 50 is unbiased, the quantity to shrink is the distance from 50.
    if name.startswith(("StereoSet", "CrowS")) and name.split()[-1] not in {"LMS", "ICAT"}:
        db, da = abs(b - 50), abs(a - 50)
        row["bias_reduction_pct"] = (100 * (db - da) / db) if db > 0 else math.nan
    return row


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
        "## Data",
        "",
    ]
    lines += [f"- `{p}`" for p in plan.train_data]
    lines += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(spec.model_dump(), indent=2),
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
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {
        "name": spec.name,
        "rows": rows,
        "steps": [r.__dict__ | {"log": str(r.log)} for r in results],
        "before": str(plan.before),
        "after": str(plan.after),
        "spec": spec.model_dump(),
    }
    with atomic_path(plan.workdir / "report.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return report
