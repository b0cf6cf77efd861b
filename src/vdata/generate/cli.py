"""`vdata gen OUT OPTIONS.json` and `vdata schema gen`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vdata.generate.options import EXAMPLE_OPTIONS

GEN_HELP = f"""Generate debiasing records (sentence, group term, attribute) with an LLM.

OUT is where the records go (.jsonl, .csv or .parquet); OPTIONS.json says what to generate. With no provider set, the embedded local model is used (no key, no network). Rerunning the same command resumes an interrupted run without paying twice.

Example OPTIONS.json (every key: `vdata schema gen`):

\b
{json.dumps(EXAMPLE_OPTIONS, indent=2)}

\b
Minimal local run:   {{"categories": ["gender"], "count": 20}}
API key: -k KEY, else $APIKEY, else $OPENAI_API_KEY / $GEMINI_API_KEY.
"""


def gen(
    out: Path = typer.Argument(..., help="Output file: .jsonl, .csv or .parquet."),
    options_file: Path = typer.Argument(..., metavar="OPTIONS.json", help="What to generate (JSON)."),
    apikey: str | None = typer.Option(
        None, "-k", "--apikey", help="API key (else $APIKEY or the provider's variable)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    from vdata.generate.engine import generate
    from vdata.generate.options import load_options

    options = load_options(options_file)
    summary = generate(options, out, api_key=apikey, quiet=quiet)
    if not summary.complete:
        raise typer.Exit(1)


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


def register(app: typer.Typer) -> None:
    app.command("gen", help=GEN_HELP)(gen)
    # Other stages add their schemas to SCHEMAS (vdata.generate.cli.SCHEMAS["name"] = "module:function").
    app.command("schema")(schema)
