"""One audit run: load lexicons and benchmark index once, audit each dataset, filter, write the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from vdata.audit.auditor import AuditOptions, Auditor, default_embedder
from vdata.audit.filtering import check_output, write_clean
from vdata.audit.hygiene import load_benchmark_index
from vdata.audit.lexicons import build_lexicon, stopwords
from vdata.audit.readers import DatasetReader
from vdata.audit.report import markdown, plot_all, write_json
from vdata.core.cda import load_word_lists
from vdata.core.errors import UserError
from vdata.core.io import check_writable


@dataclass
class AuditRun:
    out_dir: Path
    filter_out: Path | None = None
    text_column: str | None = None
    lexicon_files: list[Path] = field(default_factory=list)
    word_lists_path: Path | None = None
    data_dir: Path | None = None
    target_model: str | None = None
    direction_sample: int = 200
    batch_size: int = 16
    sample: int = 1000
    embed_sample: int = 1000
    embedding_model: Path | None = None
    seed: int = 0
    near_threshold: float = 0.8
    language: str = "en"
    benchmark_overlap: bool = True
    plots: bool = True
    console: Console = field(default_factory=lambda: Console(stderr=True))
    embedder: Any = None
    target_lm: Any = None  # an already loaded `LoadedModel` for --target-model (saves loading it twice)

    def _check(self, datasets: list[tuple[str, list[Path]]]) -> list[tuple[str, DatasetReader]]:
        if self.language not in stopwords():
            raise UserError(f"--language {self.language!r}: supported are {', '.join(stopwords())}")
        if self.filter_out is not None:
            check_output(self.filter_out)
            check_writable(self.filter_out)
            inputs = {p.resolve() for p in DatasetReader(datasets[0][1]).paths}
            if self.filter_out.resolve() in inputs:
                raise UserError(
                    f"--filter {self.filter_out} is one of the inputs; write the clean data elsewhere"
                )
        check_writable(self.out_dir / "report.json")
        return [(name, DatasetReader(paths, self.text_column)) for name, paths in datasets]

    def run(self, datasets: list[tuple[str, list[Path]]]) -> dict[str, Any]:
        readers = self._check(datasets)
        word_lists = load_word_lists(self.data_dir, self.word_lists_path)
        lexicon = build_lexicon(word_lists, self.lexicon_files)
        index = None
        if self.benchmark_overlap:
            with self.console.status("indexing StereoSet and CrowS-Pairs n-grams"):
                index = load_benchmark_index(self.data_dir)
        cda_words = None
        direction = None
        if self.target_model:
            from vdata.audit.direction import make_direction_scorer

            cda_words = frozenset(w.casefold() for tuples in word_lists.values() for t in tuples for w in t)
            direction = make_direction_scorer(
                self.target_model, word_lists, self.batch_size, self.seed, loaded=self.target_lm
            )
        options = AuditOptions(
            sample=self.sample,
            embed_sample=self.embed_sample,
            direction_sample=self.direction_sample,
            seed=self.seed,
            near_threshold=self.near_threshold,
            language=self.language,
        )
        reports: dict[str, dict[str, Any]] = {}
        filter_info = None
        for k, (name, reader) in enumerate(readers):
            auditor = Auditor(lexicon, options, index, cda_words)
            self._stream(name, reader, auditor)
            report = auditor.finish(
                embedder=self._embed if options.embed_sample > 0 else None,
                direction=direction,
                progress=lambda step, name=name: self.console.log(f"{name}: {step}"),
            )
            report["label"] = name
            report["sources"] = [str(p) for p in reader.paths]
            if k == 0 and self.filter_out is not None:
                with self.console.status(f"writing {self.filter_out}"):
                    kept = write_clean(
                        DatasetReader(datasets[0][1], self.text_column), auditor.reasons, self.filter_out
                    )
                filter_info = {
                    "path": str(self.filter_out),
                    "kept": kept,
                    "removed": auditor.removal_summary(),
                }
                report["filter"] = filter_info
            reports[name] = report
        self.out_dir.mkdir(parents=True, exist_ok=True)
        plots = plot_all(reports, self.out_dir) if self.plots else []
        main_name = readers[0][0]
        main = dict(reports[main_name])
        main["compared"] = {n: r for n, r in reports.items() if n != main_name}
        main["plots"] = plots
        write_json(self.out_dir / "report.json", main)
        (self.out_dir / "report.md").write_text(markdown(reports, plots), encoding="utf-8")
        return {"reports": reports, "filter": filter_info, "report": main}

    def _embed(self, texts: list[str]) -> Any:
        """Embed texts, loading the model on first use (a dataset too small for APS never loads it)."""
        if self.embedder is None:
            with self.console.status("loading the sentence-embedding model"):
                self.embedder = default_embedder(self.embedding_model)
        return self.embedder(texts)

    def _stream(self, name: str, reader: DatasetReader, auditor: Auditor) -> None:
        with Progress(
            TextColumn(f"auditing {name}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[records]:,} records"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=self.console.quiet,
        ) as progress:
            task = progress.add_task(name, total=reader.total_bytes, records=0)
            for n, item in enumerate(reader, 1):
                auditor.add(item)
                if n % 2000 == 0:
                    progress.update(task, completed=reader.bytes.done, records=n)
            progress.update(task, completed=reader.total_bytes, records=auditor.n_records)
