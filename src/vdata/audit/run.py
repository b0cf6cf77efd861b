"""One audit run: load lexicons and benchmark index once, audit each dataset, filter, write the reports.

`run_audit(settings)` is the audit's entry point for the CLI and the pipeline. It prints nothing: progress
goes to the `progress` factory the caller passes (the CLI draws bars unless `--quiet`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from vdata.audit.auditor import AuditOptions, Auditor, DirectionScorer, Embedder, ItemFetcher, build_report
from vdata.audit.filtering import check_output, write_clean
from vdata.audit.hygiene import load_benchmark_index
from vdata.audit.partial import AuditPartial, removal_summary
from vdata.audit.readers import AuditItem, DatasetReader, items_at
from vdata.audit.report import markdown
from vdata.audit.settings import AuditSettings
from vdata.core.cda import load_word_lists
from vdata.core.errors import UserError
from vdata.core.io import check_writable, write_json_atomic, write_text_atomic
from vdata.core.lexicon import build_lexicon
from vdata.core.progress import ProgressFactory, no_progress


class FilterSummary(TypedDict):
    path: str
    kept: int
    removed: dict[str, int]


class AuditResult(TypedDict):
    reports: dict[str, dict[str, Any]]  # label -> that dataset's report, main dataset first
    filter: FilterSummary | None  # what --filter wrote, if it was given
    report: dict[str, Any]  # report.json: the main report, the others under `compared`, the plot names


def run_audit(
    settings: AuditSettings,
    progress: ProgressFactory = no_progress,
    *,
    embedder: Embedder | None = None,
    target_lm: Any | None = None,
) -> AuditResult:
    """Audit `settings.data` (and each `compare` dataset); write report.json, report.md, plots, --filter.

    `embedder` and `target_lm` (an already loaded `LoadedModel` for `target_model`) let a caller that has
    them skip loading them again; otherwise they are loaded on first use.
    """
    datasets = settings.datasets()
    readers = _check(settings, datasets)
    word_lists = load_word_lists(settings.data_dir, settings.word_lists)
    lexicon = build_lexicon(word_lists, settings.lexicon)
    index = None
    if settings.benchmark_overlap:
        with progress("indexing StereoSet and CrowS-Pairs n-grams", None, ""):
            index = load_benchmark_index(settings.data_dir)
    cda_words = None
    direction: DirectionScorer | None = None
    if settings.target_model:
        from vdata.audit.direction import make_direction_scorer

        cda_words = frozenset(w.casefold() for tuples in word_lists.values() for t in tuples for w in t)
        direction = make_direction_scorer(
            settings.target_model, word_lists, settings.batch_size, settings.seed, loaded=target_lm
        )
    embed = _LazyEmbedder(settings.embedding_model, progress, embedder)
    options = AuditOptions.from_settings(settings)
    reports: dict[str, dict[str, Any]] = {}
    filter_info: FilterSummary | None = None
    near_method = Auditor(lexicon, options).near_duplicate_method()
    for k, (name, reader) in enumerate(readers):
        merged: AuditPartial
        fetch_items: ItemFetcher
        if settings.engine == "ray":
            from vdata.audit.ray_engine import ShardJob, audit_on_ray

            job = ShardJob(lexicon, options, index, cda_words, settings.text_column)
            merged, fetch_items = audit_on_ray(name, reader.paths, job, settings.ray_address, progress)
        else:
            merged = _stream(name, reader, Auditor(lexicon, options, index, cda_words), progress)
            fetch_items = _row_reader(datasets[k][1], settings.text_column)
        with progress(f"{name}: sample metrics", None, "") as task:
            report = build_report(
                merged,
                options,
                near_method=near_method,
                fetch_items=fetch_items,
                benchmark_sizes=index.sizes if index is not None else None,
                embedder=embed if options.embed_sample > 0 else None,
                direction=direction,
                progress=lambda step, task=task: task.update(info=step),
            )
        report["label"] = name
        report["sources"] = [str(p) for p in reader.paths]
        if k == 0 and settings.filter is not None:
            with progress(f"writing {settings.filter}", None, ""):
                kept = write_clean(
                    DatasetReader(datasets[0][1], settings.text_column), merged.reasons, settings.filter
                )
            filter_info = {
                "path": str(settings.filter),
                "kept": kept,
                "removed": removal_summary(merged.reasons),
            }
            report["filter"] = filter_info
        reports[name] = report
    settings.out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    if settings.plots:
        from vdata.audit.plots import plot_all

        plots = plot_all(reports, settings.out)
    main_name = readers[0][0]
    main = dict(reports[main_name])
    main["compared"] = {n: r for n, r in reports.items() if n != main_name}
    main["plots"] = plots
    write_json_atomic(settings.out / "report.json", main)
    write_text_atomic(settings.out / "report.md", markdown(reports, plots))
    return {"reports": reports, "filter": filter_info, "report": main}


def _check(
    settings: AuditSettings, datasets: list[tuple[str, list[Path]]]
) -> list[tuple[str, DatasetReader]]:
    """Fail on unusable outputs before any expensive work; open each dataset."""
    if settings.filter is not None:
        check_output(settings.filter)
        check_writable(settings.filter)
        inputs = {p.resolve() for p in DatasetReader(datasets[0][1]).paths}
        if settings.filter.resolve() in inputs:
            raise UserError(
                f"--filter {settings.filter} is one of the inputs; write the clean data elsewhere"
            )
    check_writable(settings.out / "report.json")
    readers = [(name, DatasetReader(paths, settings.text_column)) for name, paths in datasets]
    if settings.engine == "ray":  # Ray missing or its cluster unreachable: say so before any slow work
        from vdata.audit.ray_engine import start_ray

        start_ray(settings.ray_address)
    return readers


class _LazyEmbedder:
    """Embeds texts, loading the model on first use (a dataset too small for APS never loads it)."""

    def __init__(self, model_path: Path | None, progress: ProgressFactory, loaded: Embedder | None) -> None:
        self.model_path, self.progress, self.loaded = model_path, progress, loaded

    def __call__(self, texts: list[str]) -> Any:
        if self.loaded is None:
            from vdata.audit.embeddings import default_embedder

            with self.progress("loading the sentence-embedding model", None, ""):
                self.loaded = default_embedder(self.model_path)
        return self.loaded(texts)


def _row_reader(paths: list[Path], text_column: str | None) -> ItemFetcher:
    """Rows of the dataset by ordinal, read again (the examples of duplicates are known only at the end)."""

    def rows(ordinals: Sequence[int]) -> dict[int, AuditItem]:
        return items_at(DatasetReader(paths, text_column), ordinals)

    return rows


def _stream(name: str, reader: DatasetReader, auditor: Auditor, progress: ProgressFactory) -> AuditPartial:
    """The local engine's streaming pass: the whole dataset as one shard. The bar counts bytes read."""
    with progress(f"auditing {name}", reader.total_bytes, "bytes") as task:
        n = 0
        for n, item in enumerate(reader, 1):
            auditor.add(item)
            if n % 2000 == 0:
                task.update(completed=reader.bytes.done, info=f"{n:,} records")
        task.update(completed=reader.total_bytes, info=f"{n:,} records")
    return auditor.partial()
