"""`vdata eval`: bias benchmarks (StereoSet, CrowS-Pairs, BiasTestGPT) the way bias-bench computes them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vdata.core.errors import UserError

if TYPE_CHECKING:
    from vdata.evaluate.settings import EvalSettings

HELP = """Evaluate a model's social bias (bias-bench protocol) and capability.

  vdata eval MODEL [--benchmarks stereoset,crows_pairs,biastestgpt] [--split test|dev] ...
  vdata eval --from-predictions preds.json --benchmarks stereoset --split dev --out results.json
  vdata eval compare before.json after.json [--out compare.md] [--predictions BEFORE_PREDS,AFTER_PREDS]

MODEL: `smollm2-135m` (default), a Hugging Face id or checkpoint path, or a `vdata debias` output dir.
Writes results JSON, a markdown summary (.md) and a bar chart (.png) beside --out.
"""


def _default_out(model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model).strip("-") or "model"
    return Path(f"eval-{slug}.json")


def _compare(
    paths: list[str], out: Path | None, quiet: bool, predictions: str | None, settings: EvalSettings
) -> None:
    from vdata.core.io import atomic_path, check_writable
    from vdata.evaluate.paired import paired_intervals
    from vdata.evaluate.report import compare_table

    if len(paths) != 2:
        raise UserError("usage: vdata eval compare BEFORE.json AFTER.json [--out table.md]")
    docs = []
    for p in map(Path, paths):
        try:
            docs.append(json.loads(p.read_text(encoding="utf-8")))
        except FileNotFoundError as e:
            raise UserError(f"results file {p} does not exist") from e
        except json.JSONDecodeError as e:
            raise UserError(f"{p} is not a vdata eval results JSON ({e})") from e
    out = out or Path("compare.md")
    if out.suffix == ".json":
        raise UserError("compare writes markdown; give --out a .md path")
    check_writable(out)
    paired = None
    if predictions is not None:
        files = [Path(p) for p in predictions.split(",") if p.strip()]
        if len(files) != 2:
            raise UserError(
                "--predictions takes two files: BEFORE_PREDS,AFTER_PREDS (from --predictions-out)"
            )
        # Paired intervals (the same resampled examples before and after) decide what moved.
        paired = paired_intervals(files[0], files[1], settings)
    table = compare_table(docs[0], docs[1], paired)
    with atomic_path(out) as tmp:
        tmp.write_text(table, encoding="utf-8")
    if not quiet:
        typer.echo(table)
    typer.echo(f"wrote {out}", err=True)


def register(app: typer.Typer) -> None:
    from vdata.evaluate.settings import EvalSettings

    def default(name: str) -> Any:
        """The settings model's default, shown by --help (declared once, in EvalSettings)."""
        return EvalSettings.model_fields[name].get_default(call_default_factory=True)

    @app.command("eval", help=HELP)
    def eval_command(
        args: list[str] = typer.Argument(
            None,
            metavar="MODEL | compare BEFORE AFTER",
            help="model to evaluate, or `compare before.json after.json`",
        ),
        benchmarks: str = typer.Option(
            ",".join(default("benchmarks")), help="comma-separated: stereoset, crows_pairs, biastestgpt"
        ),
        split: str = typer.Option(
            default("split"), help="StereoSet split: test (what bias-bench reports) or dev"
        ),
        bias_types: str = typer.Option(
            None, help="comma-separated bias types to keep, e.g. gender,race,religion"
        ),
        limit: int = typer.Option(
            None, help="only the first N examples of each domain / bias type (quick runs)"
        ),
        batch_size: int = typer.Option(default("batch_size"), help="sentences per forward pass"),
        out: Path = typer.Option(
            None, help="results JSON (default eval-<model>.json); .md and .png beside it"
        ),
        predictions_out: Path = typer.Option(None, help="also write per-sentence scores (StereoSet format)"),
        paired_predictions: str = typer.Option(
            None,
            "--predictions",
            help="compare: BEFORE_PREDS,AFTER_PREDS (files from --predictions-out) for paired intervals; "
            "give the --benchmarks/--split/--bias-types/--limit the evaluations used",
        ),
        from_predictions: Path = typer.Option(None, help="re-aggregate a predictions file, no model needed"),
        ppl_text: Path = typer.Option(None, help="also report perplexity on this text file (causal LMs)"),
        data_dir: Path = typer.Option(
            None, help="folder holding the benchmark files (else VDATA_DATA_DIR, cache)"
        ),
        start_token: str = typer.Option(
            None,
            help="causal LMs: token the first word is conditioned on "
            "(default: BOS, else EOS; GPT-2: <|endoftext|>)",
        ),
        seed: int = typer.Option(default("seed"), help="bootstrap seed for the 95% intervals"),
        resamples: int = typer.Option(default("resamples"), help="bootstrap resamples"),
        dtype: str = typer.Option(default("dtype"), help="model dtype (float32 reproduces bias-bench)"),
        crows_protocol: str = typer.Option(
            default("crows_protocol"),
            help="bias-bench (default, vdata's contract) or lm-eval: score CrowS-Pairs as "
            "lm-evaluation-harness's crows_pairs_english does (pct_stereotype, likelihood_diff)",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars or tables"),
    ) -> None:
        from vdata.core.io import check_writable
        from vdata.core.progress import progress_factory
        from vdata.core.settings import validate_settings
        from vdata.evaluate.report import write_results
        from vdata.evaluate.runner import run_from_predictions, run_model

        args = list(args or [])
        flags = {
            "benchmarks": benchmarks,
            "split": split,
            "bias_types": bias_types,
            "limit": limit,
            "batch_size": batch_size,
            "start_token": start_token,
            "data_dir": data_dir,
            "ppl_text": ppl_text,
            "seed": seed,
            "resamples": resamples,
            "dtype": dtype,
            "crows_protocol": crows_protocol,
        }
        settings = validate_settings(
            EvalSettings,
            {k: v for k, v in flags.items() if v is not None},
            source="vdata eval",
            hint="See `vdata eval --help`.",
        )
        if args and args[0] == "compare":
            _compare(args[1:], out, quiet, paired_predictions, settings)
            return
        if len(args) > 1:
            raise UserError(f"expected one MODEL, got {len(args)}: {' '.join(args)}")
        if from_predictions is not None and args:
            raise UserError("give either MODEL or --from-predictions, not both")
        model = args[0] if args else "smollm2-135m"
        out = out or (_default_out(from_predictions.stem) if from_predictions else _default_out(model))
        if out.suffix != ".json":
            raise UserError(f"--out {out} should end in .json (the .md and .png are written beside it)")
        for path in (out, out.with_suffix(".md"), out.with_suffix(".png"), predictions_out):
            if path is not None:
                check_writable(path)
        if from_predictions is not None:
            results, predictions = run_from_predictions(from_predictions, settings), None
        else:
            results, predictions = run_model(model, settings, progress_factory(not quiet))
        written = write_results(results, out, predictions, predictions_out)
        if not quiet:
            from vdata.evaluate.report import markdown_summary

            typer.echo(markdown_summary(results))
        typer.echo("wrote " + ", ".join(map(str, written)), err=True)
