"""`vdata gen OUT OPTIONS.json` and `vdata schema gen`: the stage's command line (the only part that draws)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vdata.core.records import Record
from vdata.generate.options import EXAMPLE_OPTIONS
from vdata.generate.providers import GENERIC_KEY_VARIABLE, PROVIDERS

if TYPE_CHECKING:
    from rich.console import Console

    from vdata.generate.options import GenOptions
    from vdata.generate.summary import Summary

# after_generate(out, records, quiet): called once `vdata gen` has written `records` (at least one) to
# `out`; the top-level CLI passes the contribution offer here (a stage never imports another stage).
AfterGenerate = Callable[[Path, Sequence[Record], bool], None]


def gen_help() -> str:
    own = " / ".join(f"${var}" for _, spec in PROVIDERS.entries() for var in spec.key_variables[:1])
    return f"""Generate debiasing records (sentence, group term, attribute) with an LLM.

OUT is where the records go (.jsonl, .csv or .parquet); OPTIONS.json says what to generate. With no provider set, the embedded local model is used (no key, no network). Rerunning the same command resumes an interrupted run without paying twice.

Example OPTIONS.json (every key: `vdata schema gen`):

\b
{json.dumps(EXAMPLE_OPTIONS, indent=2)}

\b
Minimal local run:   {{"categories": ["gender"], "count": 20}}
API key: -k KEY, else ${GENERIC_KEY_VARIABLE}, else {own}.
"""


def print_summary(console: Console, s: Summary) -> None:
    from rich.table import Table

    table = Table(title=f"vdata gen → {s.out}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("records", f"{s.records} of {s.wanted}" + (f" ({s.resumed} resumed)" if s.resumed else ""))
    drops = ", ".join(f"{k} {v}" for k, v in s.drops.most_common()) or "none"
    table.add_row("dropped", f"{sum(s.drops.values())} ({drops})")
    if s.gated:
        per = 1000 * s.gate_seconds / s.gated
        table.add_row(
            "gate",
            f"{s.gated} candidates checked, {s.gated - len(s.rejected)} passed, "
            f"{s.gate_seconds:.1f} s ({per:.0f} ms per candidate)"
            + (f" + {s.judge_load_seconds:.1f} s loading the judge" if s.judge_load_seconds else ""),
        )
    table.add_row(
        "requests", f"{s.requests} sent, {s.cached} from cache, {s.failed} failed, {s.retries} retries"
    )
    if s.errors:
        table.add_row("errors", ", ".join(f"{k} x{v}" for k, v in s.errors.most_common()))
    if s.batch_jobs or s.batch_jobs_resumed:
        table.add_row(
            "batch",
            f"{s.batch_jobs} jobs submitted, {s.batch_jobs_resumed} picked up from an earlier run; "
            f"{s.batch_requests} requests at batch prices",
        )
    table.add_row("tokens", f"{s.prompt_tokens:,} prompt + {s.completion_tokens:,} completion")
    table.add_row(
        "cost", f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown (no price for this model)"
    )
    table.add_row("time", f"{s.seconds:.1f} s")
    console.print(table)
    if s.stop_reason:
        console.print(f"[yellow]{s.stop_reason}[/]", highlight=False)
    if not s.complete:
        console.print("[yellow]incomplete: rerun the same command to continue (cached replies are free)[/]")


def run_gen(
    options: GenOptions,
    out: Path,
    *,
    api_key: str | None = None,
    quiet: bool = False,
    after_generate: AfterGenerate | None = None,
    rejected: Path | None = None,
    summary_file: Path | None = None,
) -> Summary:
    """`vdata gen` with its UI: progress bar and warnings on stderr, the summary table on stdout, then
    `after_generate` (unless nothing was written). `rejected`: where the gate's dropped candidates go;
    `summary_file`: the summary as JSON, for scripts."""
    from rich.console import Console

    from vdata.core.io import check_writable, write_json_atomic
    from vdata.core.progress import progress_factory
    from vdata.generate.engine import generate
    from vdata.generate.verify.command import write_rejected

    for path in (rejected, summary_file):
        if path is not None:
            check_writable(path)

    err = Console(stderr=True)

    def warn(message: str) -> None:
        err.print(f"[yellow]{message}[/]", highlight=False, markup=False)

    summary = generate(
        options,
        out,
        api_key=api_key,
        progress=progress_factory(not quiet, err),
        log=None if quiet else warn,
    )
    if rejected is not None:
        write_rejected(summary.rejected, rejected)
    if summary_file is not None:
        write_json_atomic(summary_file, summary.to_dict())
    if not quiet:
        print_summary(Console(), summary)
        if rejected is not None:
            Console().print(
                f"{len(summary.rejected)} dropped candidates written to {rejected}", highlight=False
            )
    if after_generate is not None and summary.written:
        after_generate(out, summary.written, quiet)
    return summary


SCHEMAS = {"gen": "vdata.generate.options:options_schema"}


def schema(
    command: str = typer.Argument(..., help="Command whose options file schema to print, e.g. gen."),
) -> None:
    """Print the JSON Schema of a command's options file."""
    import importlib

    from vdata.core.errors import UserError

    if command not in SCHEMAS:
        raise UserError(f"no options schema for {command!r}; available: {', '.join(sorted(SCHEMAS))}")
    module, func = SCHEMAS[command].split(":")
    typer.echo(json.dumps(getattr(importlib.import_module(module), func)(), indent=2))


def verify(
    src: Path = typer.Argument(
        ..., metavar="IN", help="Records to check (.jsonl/.csv/.parquet, or Han et al.'s .json)."
    ),
    out: Path = typer.Argument(..., help="Where the records that pass go (.jsonl, .csv or .parquet)."),
    rejected: Path | None = typer.Option(
        None, "--rejected", metavar="FILE", help="Write the dropped records (JSONL, with reasons)."
    ),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="Counter-stereotype judge (default: the embedded model)."
    ),
    rule: str | None = typer.Option(
        None, "--rule", help="attribute_given_group (default) or whole_sentence."
    ),
    margin: float | None = typer.Option(
        None, "--margin", help="Judge margin in nats (see docs/generate.md)."
    ),
    checks: str | None = typer.Option(
        None, "--checks", help="Comma-separated checks to run (default: all built-in)."
    ),
    category: str = typer.Option(
        "gender", "--category", help="Category of Han et al. rows (they carry none)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Run the verification gate of `vdata gen` over an existing record file."""
    from rich.console import Console

    from vdata.core.progress import progress_factory
    from vdata.core.settings import validate_settings
    from vdata.generate.verify.command import run_verify
    from vdata.generate.verify.settings import VerifySettings

    given = {"rule": rule, "margin": margin, "checks": checks}
    settings = validate_settings(
        VerifySettings, {k: v for k, v in given.items() if v is not None}, source="vdata verify", prefix="--"
    )
    err = Console(stderr=True)
    result = run_verify(
        src,
        out,
        settings,
        rejected=rejected,
        judge_model=judge_model,
        category=category,
        progress=progress_factory(not quiet, err),
    )
    if not quiet:
        total = len(result.kept) + len(result.rejected)
        reasons = ", ".join(f"{k} {v}" for k, v in result.reasons.most_common()) or "none"
        typer.echo(
            f"vdata verify → {out}: kept {len(result.kept)} of {total}; dropped {len(result.rejected)} "
            f"({reasons}); {result.seconds:.1f} s"
        )


def register(app: typer.Typer, *, after_generate: AfterGenerate | None = None) -> None:
    """Add `vdata gen`, `vdata verify` and `vdata schema` to `app`; `after_generate` runs after every successful write."""

    def gen(
        out: Path = typer.Argument(..., help="Output file: .jsonl, .csv or .parquet."),
        options_file: Path = typer.Argument(..., metavar="OPTIONS.json", help="What to generate (JSON)."),
        apikey: str | None = typer.Option(
            None, "-k", "--apikey", help="API key (else $APIKEY or the provider's variable)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
        rejected: Path | None = typer.Option(
            None,
            "--rejected",
            metavar="FILE",
            help="Write the candidates the gate dropped (JSONL, with reasons).",
        ),
        summary_file: Path | None = typer.Option(
            None,
            "--summary",
            metavar="FILE.json",
            help="Also write the run's summary as JSON (records, drops by reason, tokens, cost, gate).",
        ),
    ) -> None:
        from vdata.generate.options import load_options

        summary = run_gen(
            load_options(options_file),
            out,
            api_key=apikey,
            quiet=quiet,
            after_generate=after_generate,
            rejected=rejected,
            summary_file=summary_file,
        )
        if not summary.complete:
            raise typer.Exit(1)

    app.command("gen", help=gen_help())(gen)
    app.command("verify")(verify)
    # Other stages add their schemas to SCHEMAS (vdata.generate.cli.SCHEMAS["name"] = "module:function").
    app.command("schema")(schema)
