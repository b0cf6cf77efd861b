"""The `vdata` command. A thin layer: each stage package registers its own commands via `register(app)`."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from vdata import __version__
from vdata.core.errors import UserError

app = typer.Typer(
    name="vdata",
    help="Synthetic debiasing data for language models: generate, audit, debias, evaluate, share.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Stage packages, each with a `cli.register(app)`; heavy imports (torch, transformers) stay inside commands.
STAGES = ("generate", "evaluate", "audit", "debias", "server", "pipeline")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vdata {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    pass


for _stage in STAGES:
    try:
        _mod = importlib.import_module(f"vdata.{_stage}.cli")
    except ModuleNotFoundError as _e:
        if _e.name != f"vdata.{_stage}.cli":
            raise
        continue
    _mod.register(app)


def main() -> None:
    err = Console(stderr=True)
    try:
        app(standalone_mode=False)
    except UserError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume")
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
