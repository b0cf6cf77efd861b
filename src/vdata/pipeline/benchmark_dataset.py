"""`vdata benchmark-dataset SOURCE --out DIR`: audit the approved data, then measure whether it debiases.

Steps (fingerprinted and resumable like `vdata run`: a step whose settings and input hashes match its last
successful run, with its outputs present, is skipped; `DIR/steps/<name>.json` records each):

  audit                 the existing audit (diversity, group balance, stereotype direction with the model,
                        hygiene, benchmark overlap); its filter writes the clean records trained on
  sample-<category>     a training sample of fixed size, stratified by target term
  eval-base             the base model on StereoSet (test split) + CrowS-Pairs of every measured category,
                        and perplexity: once, reused by every category
  debias-<category>     the model trained on the sample with `RECOMMENDED_TRAINING`
  eval-<category>       the debiased model, same evaluation for its category

then `DIR/benchmark.json` (schema `vdata.benchmark/1`) and `DIR/report.md` with plots are written.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdata import __version__
from vdata.audit.partial import HYGIENE_KEYS
from vdata.audit.run import run_audit
from vdata.audit.settings import AuditSettings
from vdata.core.benchdata import locate
from vdata.core.errors import UserError
from vdata.core.io import read_records, write_json_atomic, write_records, write_text_atomic
from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.records import Record
from vdata.debias.settings import DebiasSettings
from vdata.debias.train import run_debias
from vdata.evaluate import stereoset
from vdata.evaluate.runner import run_model
from vdata.pipeline.benchmark_effect import (
    STEREOSET_SPLIT,
    category_effect,
    eval_settings,
    perplexity_text,
    skip_reason,
    stratified_sample,
)
from vdata.pipeline.benchmark_settings import STEREOSET_DOMAIN, BenchmarkSettings
from vdata.pipeline.benchmark_source import SourceData, read_source, write_source
from vdata.pipeline.steps import Step, StepResult, StepRunner

SCHEMA = "vdata.benchmark/1"
RESULT = "benchmark.json"


@dataclass
class BenchmarkRun:
    """What a finished run returns: the document written to benchmark.json and how each step went."""

    document: dict[str, Any]
    steps: list[StepResult] = field(default_factory=list)
    path: Path = Path()
    report: Path = Path()


def _json(settings: Any) -> dict[str, Any]:
    return json.loads(settings.model_dump_json())


def history_files(paths: Sequence[Path], exclude: Path | None = None) -> list[Path]:
    """The benchmark.json files `--history` names: a file, a run folder (its benchmark.json) or a folder of
    run folders (each one's benchmark.json); `exclude` (this run's own file) is left out."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir() and not (p / RESULT).is_file():
            runs = sorted(p.glob(f"*/{RESULT}"))
            if not runs:
                raise UserError(
                    f"--history {p}: no {RESULT} in it or in its folders; give earlier benchmark.json files "
                    "or their folders"
                )
            found += runs
        else:
            found.append(p / RESULT if p.is_dir() else p)
    skip = exclude.resolve() if exclude is not None else None
    return [f for f in found if f.resolve() != skip]


def load_history(paths: Sequence[Path], exclude: Path | None = None) -> list[dict[str, Any]]:
    """Earlier benchmark.json documents (see `history_files`), oldest first."""
    docs = []
    for path in history_files(paths, exclude):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise UserError(
                f"--history {path}: no such file; give earlier benchmark.json files or their folders"
            ) from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"--history {path}: not JSON ({e})") from e
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise UserError(f"--history {path}: not a {SCHEMA} document (written by vdata benchmark-dataset)")
        docs.append(doc)
    return sorted(docs, key=lambda d: str(d.get("created", "")))


class BenchmarkDataset:
    """One run over SOURCE into `settings.out`; `run()` does the steps in order and writes the results."""

    def __init__(
        self,
        settings: BenchmarkSettings,
        progress: ProgressFactory = no_progress,
        echo: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.s = settings
        self.progress = progress
        self.out = settings.out
        self.runner = StepRunner(self.out, echo=echo)
        self.results: list[StepResult] = []
        self.records_path = self.out / "data" / "records.jsonl"
        self.clean_path = self.out / "data" / "clean.jsonl"
        self.ppl_path = self.out / "eval" / "perplexity.txt"

    def _step(self, step: Step) -> None:
        self.results.append(self.runner.run(step))

    def run(self) -> BenchmarkRun:
        history = load_history(self.s.history, exclude=self.out / RESULT)  # bad --history: before any work
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--out {self.out} is a file; give a folder")
        with self.progress("reading the source", None, ""):
            source = read_source(self.s.source)
        if not source.records:
            raise UserError(f"SOURCE {source.where} holds no approved records; nothing to benchmark")
        write_source(source, self.records_path)
        write_text_atomic(self.ppl_path, perplexity_text(self.s.data_dir, self.s.ppl_sentences))

        audit = self._audit()
        clean_by_category: dict[str, list[Record]] = defaultdict(list)
        for r in read_records(self.clean_path):
            clean_by_category[r.category or "uncategorised"].append(r)
        reasons = {
            c: skip_reason(c, len(clean_by_category.get(c, [])), self.s.min_records)
            for c in source.by_category()
        }
        measured = [c for c, why in reasons.items() if why is None]
        categories: dict[str, dict[str, Any]] = {
            c: {"status": "skipped", "reason": why, "train_records": 0, "stereoset": None,
                "crows_pairs": None, "perplexity": None, "verdict": None}
            for c, why in reasons.items() if why is not None
        }  # fmt: skip
        details: dict[str, dict[str, Any]] = {}
        if measured:
            base = self._evaluate("eval-base", self.s.model, measured, [*self._model_inputs()])
            for c in measured:
                sample = self._sample(c, clean_by_category[c])
                model_dir = self._debias(c, sample)
                after = self._evaluate(f"eval-{c}", str(model_dir), [c], [model_dir / "manifest.json"])
                examples = self._stereoset_examples(c)
                figures = category_effect(c, examples, base, after, self.s)
                details[c] = figures.pop("_detail")
                categories[c] = {
                    "status": "measured",
                    "reason": None,
                    "train_records": len(read_records(sample)),
                    **figures,
                }
        document = json_safe(self._document(source, audit, dict(sorted(categories.items()))))
        path = self.out / RESULT
        from vdata.pipeline.benchmark_report import write_report

        report = write_report(self.out, document, details, history, self.results)
        write_json_atomic(path, document)  # last: benchmark.json exists only when everything else does
        return BenchmarkRun(document, self.results, path, report)

    # ---- steps --------------------------------------------------------------------------------------

    def _audit(self) -> dict[str, Any]:
        settings = AuditSettings(
            data=[self.records_path],
            out=self.out / "audit",
            filter=self.clean_path,
            label="approved",
            data_dir=self.s.data_dir,
            target_model=self.s.model,
            sample=self.s.audit_sample,
            embed_sample=self.s.audit_embed_sample,
            seed=self.s.seed,
        )
        report = settings.out / "report.json"

        def action() -> str:
            result = run_audit(settings, self.progress)
            kept = result["filter"]["kept"] if result["filter"] else 0
            return f"audit report in {settings.out}; {kept} clean records in {self.clean_path}"

        self._step(Step("audit", action, [self.records_path], [report, self.clean_path], _json(settings)))
        return json.loads(report.read_text(encoding="utf-8"))

    def _sample(self, category: str, records: list[Record]) -> Path:
        path = self.out / "data" / f"train-{category}.jsonl"

        def action() -> str:
            chosen = stratified_sample(records, self.s.sample, self.s.seed)
            write_records(chosen, path)
            return f"{len(chosen)} of {len(records)} clean {category} records, stratified by target term"

        settings = {"category": category, "size": self.s.sample, "seed": self.s.seed}
        self._step(Step(f"sample-{category}", action, [self.clean_path], [path], settings))
        return path

    def _debias(self, category: str, sample: Path) -> Path:
        settings = DebiasSettings(
            **self.s.training.model_dump()
            | {
                "model": self.s.model,
                "data": [str(sample)],
                "out": "(chosen below)",
                "data_dir": str(self.s.data_dir) if self.s.data_dir else None,
            }
        )
        step = Step(
            f"debias-{category}",
            lambda: "",
            [sample, *self._model_inputs()],
            [],
            settings.fingerprint_fields(),
        )
        # One folder per fingerprint: an interrupted run resumes from its checkpoint, a changed one never
        # meets the other's files.
        model_dir = self.out / "models" / category / step.fingerprint()[:16]
        settings.out = str(model_dir)
        step.outputs = [model_dir / "manifest.json"]

        def action() -> str:
            result = run_debias(settings, self.progress)
            for old in model_dir.parent.iterdir():
                if old != model_dir:
                    shutil.rmtree(old, ignore_errors=True)
            m = result.manifest
            return (
                f"{m['counts']['train_examples']} examples, {m['steps']} steps, {m['train_seconds']:.0f}s, "
                f"val loss {m['losses']['initial_val']:.3f} -> {m['losses']['final_val']:.3f}"
            )

        step.action = action
        self._step(step)
        return model_dir

    def _evaluate(self, name: str, model: str, categories: list[str], inputs: list[Path]) -> dict[str, Any]:
        settings = eval_settings(self.s, categories, self.ppl_path)
        results_path = self.out / "eval" / f"{name.removeprefix('eval-')}.json"
        predictions_path = results_path.with_suffix(".predictions.json")

        def action() -> str:
            results, predictions = run_model(model, settings, self.progress)
            write_json_atomic(predictions_path, predictions)
            write_json_atomic(results_path, results)
            return f"results in {results_path} ({results['provenance']['wall_seconds']:.0f}s)"

        recorded = {"model": model if name == "eval-base" else "debiased", **_json(settings)}
        self._step(Step(name, action, [self.ppl_path, *inputs], [results_path, predictions_path], recorded))
        return {
            "results": json.loads(results_path.read_text(encoding="utf-8")),
            "predictions": json.loads(predictions_path.read_text(encoding="utf-8")),
        }

    def _stereoset_examples(self, category: str) -> list[stereoset.Example]:
        path = locate(f"stereoset/{STEREOSET_SPLIT}.json", self.s.data_dir)
        return stereoset.load_examples(path, [STEREOSET_DOMAIN[category]], self.s.eval_limit)

    def _model_inputs(self) -> list[Path]:
        p = Path(self.s.model)
        return [p] if p.exists() else []

    # ---- benchmark.json -----------------------------------------------------------------------------

    def _document(
        self, source: SourceData, audit: dict[str, Any], categories: dict[str, Any]
    ) -> dict[str, Any]:
        base_path = self.out / "eval" / "base.json"
        provenance = json.loads(base_path.read_text())["provenance"] if base_path.exists() else {}
        return {
            "schema": SCHEMA,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": {
                "kind": source.kind,
                "snapshot_id": source.snapshot_id,
                "data_sha256": source.data_sha256(),
                "records": len(source.records),
                "records_by_category": source.by_category(),
            },
            "model": {
                "name": self.s.model,
                "sha256": provenance.get("model_sha256") or _model_sha256(self.s.model),
            },
            "settings": {
                "sample": self.s.sample,
                "min_records": self.s.min_records,
                "eval_limit": self.s.eval_limit,
                "ppl_sentences": self.s.ppl_sentences,
                "resamples": self.s.resamples,
                "seed": self.s.seed,
                "stereoset_split": STEREOSET_SPLIT,
                # lr as trained: the settings leave it to the method's default when not set.
                "training": {**_json(self.s.training), "lr": self.s.training.learning_rate()},
            },
            "versions": versions(),
            "audit": audit_figures(audit),
            "categories": categories,
        }


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as None: benchmark.json is strict JSON (an undefined figure, such
    as the bias cut of a category the base model scores exactly 50 on, is null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _model_sha256(model: str) -> str | None:
    from vdata.lm.models import checkpoint_hash, resolve_checkpoint

    return checkpoint_hash(resolve_checkpoint(model))


def versions() -> dict[str, str]:
    import numpy
    import peft
    import torch
    import transformers

    return {
        "vdata": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


HYGIENE_COUNTS = (*HYGIENE_KEYS, "removable")


def audit_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The audit's key figures (the whole report stays in DIR/audit/report.json)."""
    diversity = report.get("diversity", {})
    direction = report.get("direction") or {}
    groups = {
        name: {"records": g["records"], "entropy": g["entropy"], "distribution": g["distribution"]}
        for name, g in (report.get("groups") or {}).items()
        if g.get("records")
    }
    return {
        "records": report.get("n_records"),
        "clean_records": (report.get("filter") or {}).get("kept"),
        "diversity": {
            k: diversity.get(k) for k in ("distinct_1", "distinct_2", "distinct_3", "self_bleu", "aps")
        },
        "group_balance": groups,
        "hygiene": {k: (report.get("hygiene") or {}).get(k) for k in HYGIENE_COUNTS},
        "direction": {
            k: direction.get(k)
            for k in (
                "model",
                "n_pairs",
                "mean_difference",
                "share_data_more_likely",
                "share_counterfactual_more_likely",
            )
            if k in direction
        },
    }
