"""`vdata audit`: measure a dataset's diversity, group balance, stereotype direction and hygiene.

The flags map one to one onto `AuditSettings` (defaults and help come from there); `run_audit` does the work.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vdata.audit.settings import AuditSettings
from vdata.core.settings import validate_settings


def _option(name: str, *flags: str) -> Any:
    """A Typer option for the settings field `name`: its default and its description as the help."""
    field = AuditSettings.model_fields[name]
    return typer.Option(field.get_default(call_default_factory=True), *flags, help=field.description)


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit(
        data: list[Path] = typer.Argument(..., help=AuditSettings.model_fields["data"].description),
        out: Path = _option("out", "--out", "-o"),
        compare: list[str] = _option("compare", "--compare"),
        filter_out: Path | None = _option("filter", "--filter"),
        label: str | None = _option("label", "--label"),
        text_column: str | None = _option("text_column", "--text-column"),
        lexicon: list[Path] = _option("lexicon", "--lexicon"),
        word_lists: Path | None = _option("word_lists", "--word-lists"),
        data_dir: Path | None = _option("data_dir", "--data-dir"),
        target_model: str | None = _option("target_model", "--target-model"),
        direction_sample: int = _option("direction_sample", "--direction-sample"),
        batch_size: int = _option("batch_size", "--batch-size"),
        sample: int = _option("sample", "--sample"),
        embed_sample: int = _option("embed_sample", "--embed-sample"),
        embedding_model: Path | None = _option("embedding_model", "--embedding-model"),
        seed: int = _option("seed", "--seed"),
        near_threshold: float = _option("near_threshold", "--near-threshold"),
        language: str = _option("language", "--language"),
        benchmark_overlap: bool = _option("benchmark_overlap", "--benchmark-overlap/--no-benchmark-overlap"),
        plots: bool = _option("plots", "--plots/--no-plots"),
        engine: str = _option("engine", "--engine"),
        ray_address: str | None = _option("ray_address", "--ray-address"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or table."),
    ) -> None:
        """Audit synthetic debiasing data: diversity, group balance, stereotype direction and hygiene."""
        flags = dict(locals())  # every parameter but quiet is the settings field of the same name
        del flags["quiet"]
        flags["filter"] = flags.pop("filter_out")  # --filter's parameter
        from vdata.audit.report import print_summary
        from vdata.audit.run import run_audit
        from vdata.core.progress import no_progress, rich_progress_factory

        settings = validate_settings(
            AuditSettings,
            flags,
            source="vdata audit",
            hint="Each option is the flag of that name (embed_sample is --embed-sample); see vdata audit --help.",
        )
        console = Console(stderr=True, quiet=quiet)
        progress = no_progress if quiet else rich_progress_factory(console, transient=True)
        started = time.monotonic()
        result = run_audit(settings, progress)
        if quiet:
            return
        print_summary(result["reports"], Console())
        if result["filter"]:
            f = result["filter"]
            removed = ", ".join(f"{k} {v:,}" for k, v in f["removed"].items() if v) or "nothing"
            console.print(f"filter: kept {f['kept']:,} records in {f['path']}; removed {removed}")
        console.print(f"report: {settings.out / 'report.json'} ({time.monotonic() - started:.1f} s)")
