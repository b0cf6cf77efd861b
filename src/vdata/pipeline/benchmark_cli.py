"""`vdata benchmark-dataset SOURCE --out DIR`: flags mapped onto `BenchmarkSettings`, progress, the summary."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

HELP = """Audit a dataset and measure whether it debiases: per category with enough records, train the model on a stratified sample with the recommended setting, then StereoSet (test split), CrowS-Pairs, LMS and perplexity before and after, with paired bootstrap intervals. Writes DIR/benchmark.json and DIR/report.md (with plots). Resumable: rerun the same command and finished steps are skipped by fingerprint.

SOURCE: a server database URL (sqlite:///vdata.db, postgresql://...), a snapshot folder (or a folder of snapshots: the latest), or record files (.jsonl/.csv/.parquet, comma-separated).

Example: vdata benchmark-dataset snapshots/ --out bench-runs/latest --history bench-runs/previous"""


def register(app: typer.Typer) -> None:
    @app.command("benchmark-dataset", help=HELP)
    def benchmark_dataset_cmd(
        source: str = typer.Argument(..., help="Database URL, snapshot folder or record files."),
        out: Path = typer.Option(..., "--out", help="Output folder (benchmark.json, report.md, steps)."),
        model: str = typer.Option(
            "smollm2-135m", "--model", help="Model to debias: smollm2-135m, HF id or path."
        ),
        history: list[Path] = typer.Option(
            [], "--history", help="Earlier benchmark.json files or their folders (repeatable)."
        ),
        sample: int | None = typer.Option(None, "--sample", help="Training records per category [1000]."),
        min_records: int | None = typer.Option(
            None, "--min-records", help="Skip categories with fewer clean records [200]."
        ),
        eval_limit: int | None = typer.Option(
            None, "--eval-limit", help="First N StereoSet examples per domain / CrowS pairs per type [all]."
        ),
        resamples: int | None = typer.Option(None, "--resamples", help="Bootstrap resamples [1000]."),
        seed: int | None = typer.Option(None, "--seed", help="Seed of samples and bootstrap [0]."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with the benchmark data."),
        quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors and the result path."),
    ) -> None:
        from vdata.core.progress import progress_factory
        from vdata.core.settings import validate_settings
        from vdata.pipeline.benchmark_dataset import BenchmarkDataset
        from vdata.pipeline.benchmark_settings import BenchmarkSettings

        given = {
            "sample": sample,
            "min_records": min_records,
            "eval_limit": eval_limit,
            "resamples": resamples,
            "seed": seed,
            "data_dir": data_dir,
        }
        settings = validate_settings(
            BenchmarkSettings,
            {"source": source, "out": out, "model": model, "history": history}
            | {k: v for k, v in given.items() if v is not None},
            source="vdata benchmark-dataset",
            hint="See `vdata benchmark-dataset --help`.",
        )
        console = Console(quiet=quiet, stderr=True)
        run = BenchmarkDataset(settings, progress_factory(not quiet, console), echo=console.print).run()
        for name, c in run.document["categories"].items():
            if c["status"] == "measured":
                s = c["stereoset"]
                console.print(
                    f"{name}: SS {s['ss_before']:.2f} -> {s['ss_after']:.2f}, |SS-50| cut {s['bias_cut_pct']:.1f}% "
                    f"[{s['bias_cut_ci'][0]:.1f}, {s['bias_cut_ci'][1]:.1f}], CrowS "
                    f"{c['crows_pairs']['score_before']:.2f} -> {c['crows_pairs']['score_after']:.2f}: {c['verdict']}",
                    highlight=False,
                )
            else:
                console.print(f"{name}: skipped ({c['reason']})", highlight=False)
        Console().print(f"results: {run.path}\nreport: {run.report}", highlight=False)
