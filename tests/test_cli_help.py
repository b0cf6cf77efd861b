"""`vdata --help` and every command's `--help`: nothing in a help text is lost to Rich markup (a list such
as `[gender]` reads as a tag), and every example a help text shows is valid input for its command."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from vdata.cli import app

WIDE = {"COLUMNS": "220"}  # one line per help paragraph where possible
BRACKETED = re.compile(r"\[[^\[\]]+\]")
COMMANDS = [info.name or info.callback.__name__ for info in app.registered_commands if info.callback]


def _render(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _flat(text: str) -> str:
    """Text without Rich's panel borders, whitespace collapsed: a wrapped phrase reads as one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─\b]", " ", text).split())


def _source_help(name: str) -> list[str]:
    """The help texts of command `name` as its cli.py declares them (command and each parameter)."""
    info = next(i for i in app.registered_commands if (i.name or i.callback.__name__) == name)
    command: Any = typer.main.get_command_from_info(
        info, pretty_exceptions_short=True, rich_markup_mode="rich"
    )
    texts = [command.help, command.epilog, *(getattr(p, "help", None) for p in command.params)]
    return [t for t in texts if t]


def test_every_command_is_listed() -> None:
    top = _flat(_render())
    assert len(COMMANDS) >= 9
    for name in COMMANDS:
        assert f" {name} " in top, name


@pytest.mark.parametrize("name", COMMANDS)
def test_no_bracketed_text_is_lost(name: str) -> None:
    shown = _flat(_render(name))
    sources = _source_help(name)
    assert sources, f"{name} has no help text"
    for text in sources:
        for bracketed in BRACKETED.findall(_flat(text)):
            assert bracketed in shown, f"`vdata {name} --help` lost {bracketed!r}"


def test_examples_are_all_checked() -> None:
    """Only `gen` and `run` show example files; a new example needs its own check below."""
    with_examples = {name for name in COMMANDS if "Example " in _render(name)}
    assert with_examples == {"gen", "run"}


def _example_after(heading: str, help_text: str) -> str:
    """The example below the line containing `heading`, up to the first panel, dedented."""
    lines = help_text.splitlines()
    start = next(k for k, line in enumerate(lines) if heading in line) + 1
    end = next(k for k in range(start, len(lines)) if lines[k].lstrip().startswith("╭"))
    return textwrap.dedent("\n".join(line.rstrip() for line in lines[start:end])).strip() + "\n"


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where or "(top level)"]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [n for k, v in enumerate(value) for n in _nulls(v, f"{where}[{k}]")]
    return []


def _pipeline_example() -> dict[str, Any]:
    doc = yaml.safe_load(_example_after("Example PIPELINE.yaml:", _render("run")))
    assert isinstance(doc, dict)
    return doc


def test_pipeline_example_is_a_valid_pipeline(tmp_path: Path) -> None:
    from vdata.generate.options import load_options
    from vdata.pipeline.spec import load_spec

    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(_pipeline_example()))
    spec = load_spec(path)
    assert spec.generate is not None and spec.generate.options is not None
    assert spec.generate.options["categories"] == ["gender"]  # the list Rich markup used to swallow
    options = tmp_path / "options.json"
    options.write_text(json.dumps(spec.generate.options))
    load_options(options)


def test_pipeline_example_has_no_empty_values() -> None:
    """A null in the example is a value YAML split at a comma: the example would not say what it means."""
    assert _nulls(_pipeline_example()) == []


def test_gen_examples_are_valid_options(tmp_path: Path) -> None:
    from vdata.generate.options import load_options

    shown = _render("gen")
    block = _example_after("Example OPTIONS.json", shown)
    full = block[block.index("{") : block.index("\n}\n") + 2]  # up to the closing brace on its own line
    minimal = re.search(r"Minimal local run:\s*(\{.*\})", shown)
    assert minimal is not None
    for name, text in (("full", full), ("minimal", minimal.group(1))):
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        load_options(path)
    assert json.loads(full)["categories"] == ["gender", "race+gender"]


def test_usage_error_exits_2_with_clicks_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vdata.cli import main

    monkeypatch.setattr(sys, "argv", ["vdata", "audit", "--no-such-flag"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert "No such option: --no-such-flag" in capsys.readouterr().err


def _parses(argv: list[str]) -> None:
    """Parse a `vdata ...` command line as the CLI would, without running it (UsageError if invalid)."""
    group = typer.main.get_command(app)
    ctx = group.make_context("vdata", [], resilient_parsing=True)  # the group alone: no "no args" help
    name, command, rest = group.resolve_command(ctx, list(argv))
    assert command is not None, f"no command {name!r}"
    command.make_context(name, rest, parent=ctx)


def test_home_page_contribution_lines_are_real_commands() -> None:
    """The lines the public home page tells contributors to run are commands vdata accepts."""
    import html
    import shlex

    template = Path(__file__).resolve().parents[1] / "src" / "vdata" / "server" / "templates" / "home.html"
    lines = [
        html.unescape(line).replace("{{ server_url }}", "http://127.0.0.1:8000")
        for line in template.read_text(encoding="utf-8").splitlines()
        if line.startswith("vdata ")
    ]
    assert [shlex.split(line)[1] for line in lines] == ["gen", "audit", "push", "pull"]
    for line in lines:
        _parses(shlex.split(line)[1:])
    with pytest.raises(Exception, match="No such option"):
        _parses(["gen", "--category", "gender", "out.jsonl"])  # what the page said before
