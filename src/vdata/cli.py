"""The `vdata` command. A thin layer: each stage package registers its own commands via `register(app)`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from vdata import __version__
from vdata.core.errors import UserError
from vdata.core.records import Record

# Click's base exception, found through a name typer exports: newer typer versions carry their own copy of
# click, so `click.ClickException` would not catch a usage error such as an unknown flag.
CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _literal_help(command: Any) -> None:
    """Escape Rich markup in a command's help texts, so `[gender]` in an example is shown, not read as a tag."""
    for owner in (command, *command.params):
        for attr in ("help", "short_help", "epilog"):
            text = getattr(owner, attr, None)
            if isinstance(text, str):
                setattr(owner, attr, escape(text))
    for sub in getattr(command, "commands", {}).values():  # a group's subcommands
        _literal_help(sub)


class LiteralHelpGroup(TyperGroup):
    """The `vdata` group: help is drawn with Rich, but help texts are plain text (lists, YAML, JSON).

    Help texts live in each stage's cli.py; Rich would read `[gender]` or `[stereoset, crows_pairs]` in them
    as markup tags and drop them. Escaping here, once per built command tree, covers every command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)


app = typer.Typer(
    cls=LiteralHelpGroup,
    name="vdata",
    help="Synthetic debiasing data for language models: generate, audit, debias, evaluate, share.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Stage packages, each with a `cli.register(app)`; heavy imports (torch, transformers) stay inside commands.
STAGES = ("generate", "evaluate", "audit", "debias", "server", "pipeline")
# Commands of the top layer in modules of their own, each with a `register(app)`.
ENTRY_MODULES = ("vdata.pipeline.benchmark_cli",)


def _offer_contribution(out: Path, records: Sequence[Record], quiet: bool) -> None:
    """After `vdata gen` wrote records: the server stage's offer to contribute them (wired here, the only
    place where two stages meet on the command line)."""
    from vdata.server.contribute import after_generation

    after_generation(out, quiet=quiet)


def _strategy_names() -> tuple[str, ...]:
    """The generation strategies the server accepts: the generate stage's registry."""
    from vdata.generate.strategy_registry import STRATEGIES

    return tuple(STRATEGIES.names())


# What each stage's `register` receives from the others (by callbacks, so stages never import each other).
STAGE_HOOKS: dict[str, dict[str, Callable[..., Any]]] = {
    "generate": {"after_generate": _offer_contribution},
    "server": {"strategy_names": _strategy_names},
}


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
    _mod.register(app, **STAGE_HOOKS.get(_stage, {}))
for _entry in ENTRY_MODULES:
    importlib.import_module(_entry).register(app)


def main() -> None:
    err = Console(stderr=True)
    try:
        app(standalone_mode=False)
    except UserError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume")
        sys.exit(130)
    except CLICK_ERROR as e:  # usage errors: unknown flag, missing argument, bad value
        e.show()  # type: ignore[attr-defined]
        sys.exit(2)


if __name__ == "__main__":
    main()
