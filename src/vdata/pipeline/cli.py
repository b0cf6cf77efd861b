"""`vdata run PIPELINE.yaml`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

EXAMPLE = """\
name: gender-lora
model: smollm2-135m
generate:
  options: {strategy: targeted, categories: [gender], count: 40}
audit: {filter: true}
debias: {method: lora, objective: sentence, cda: [gender], epochs: 2}
eval: {benchmarks: [stereoset, crows_pairs], bias_types: [gender], limit: 200}
"""


def register(app: typer.Typer) -> None:
    @app.command(
        "run",
        help="Run generate -> audit -> debias -> eval before/after from a pipeline file; finished steps are "
        "skipped by fingerprint, and one report is written.\n\nExample PIPELINE.yaml:\n\n"
        + EXAMPLE.replace("\n", "\n\n"),
    )
    def run_cmd(
        pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Print the steps and whether each is up to date."
        ),
        quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors and the report path."),
    ) -> None:
        # Imported here: the pipeline pulls in every stage, and `vdata serve` must start without them.
        from vdata.core.progress import progress_factory
        from vdata.pipeline.run import build_plan, execute
        from vdata.pipeline.spec import load_spec
        from vdata.pipeline.steps import StepRunner

        console = Console(quiet=quiet)
        spec = load_spec(pipeline)
        plan = build_plan(spec, pipeline.resolve().parent, progress_factory(not quiet, console))
        if dry_run:
            runner = StepRunner(plan.workdir, echo=console.print)
            for step in plan.steps:
                outputs = ", ".join(map(str, step.outputs))
                Console().print(f"{step.name:12s} {runner.status(step):10s} -> {outputs}", highlight=False)
            return
        report = execute(plan, spec, echo=console.print)
        Console().print(f"report: {report}", highlight=False)
