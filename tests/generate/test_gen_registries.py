"""The extension recipes of docs/generate.md, proved from test code alone: a NEW provider and a NEW
strategy registered here (no edit to vdata) are accepted by the options, listed by the schema and the
errors, and run end to end through `generate` and the `vdata gen` command."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
from typer.testing import CliRunner

from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.core.records import Record
from vdata.core.registry import Registry
from vdata.generate.cli import register as register_gen
from vdata.generate.engine import generate
from vdata.generate.options import options_schema, parse_options
from vdata.generate.providers import (
    PROVIDERS,
    ProviderSpec,
    make_provider,
    provider_names,
    register_provider,
    resolve_api_key,
)
from vdata.generate.providers.base import Completion, Message, Provider, ProviderOptions
from vdata.generate.strategies import GenRequest, Strategy, get_strategy, register
from vdata.generate.strategy_registry import STRATEGIES, strategy_names


class EchoProvider(Provider):
    """Answers every request with one valid triple about the term the prompt ends with."""

    name = "test_echo"

    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        prompt = messages[-1]["content"]
        term = prompt.rsplit(" ", 1)[-1]
        text = f"The {term} number {seed} repaired the tractor alone. | {term} | capable"
        return Completion(
            text, prompt_tokens=len(prompt) // 4, completion_tokens=len(text) // 4, model=self.model
        )


def make_echo(options: ProviderOptions, api_key: str | None) -> Provider:
    assert options.model is not None
    return EchoProvider(options.model)


ECHO = register_provider(
    ProviderSpec(
        name="test_echo",
        description="an in-test provider that echoes the prompt's term",
        default_model="echo-1",
        factory=make_echo,
        needs_key=False,
        backends=("auto", "loud"),
        accepts_base_url=False,
        free=True,
        default_per_request=1,
        default_max_tokens=32,
    )
)


@register
class OneLiner(Strategy):
    """One sentence per request about a term that alternates between two."""

    name: ClassVar[str] = "test_one_liner"
    prompts_file: ClassVar[Path | None] = Path(__file__).with_name("one_liner.yaml")

    def build_request(self, index: int) -> GenRequest:
        category = self.category_for(index)
        term = ("nurse", "pilot")[index % 2]
        messages = self.prompt("sentences", category_words=category, term=term)
        return GenRequest(messages, index, category)


@pytest.fixture(scope="module", autouse=True)
def _forget_test_entries() -> Iterator[None]:
    yield
    PROVIDERS.remove("test_echo")
    STRATEGIES.remove("test_one_liner")


def echo_options(**extra: Any) -> dict[str, Any]:
    return {"provider": "test_echo", "strategy": "test_one_liner", "count": 6, **extra}


def test_new_names_are_allowed_listed_and_defaulted() -> None:
    assert "test_echo" in provider_names() and {"local", "openai", "gemini"} <= set(provider_names())
    assert "test_one_liner" in strategy_names() and "targeted" in strategy_names()
    schema = options_schema()["properties"]
    assert "test_echo" in schema["provider"]["enum"] and "test_one_liner" in schema["strategy"]["enum"]
    assert "loud" in schema["backend"]["enum"] and "test_echo: echo-1" in schema["model"]["description"]
    options = parse_options(echo_options(backend="loud"))
    assert (options.model, options.per_request, options.max_tokens) == ("echo-1", 1, 32)
    assert options.request_limit == 20 + 10 * 6  # default max_requests: 20 + 10 x count / per_request
    assert resolve_api_key(options, None) is None  # needs_key=False
    assert isinstance(make_provider(options, None), EchoProvider)
    assert get_strategy("test_one_liner") is OneLiner


def test_errors_name_the_registered_entries() -> None:
    with pytest.raises(UserError) as info:
        parse_options({"provider": "anthropic"})
    assert "option 'provider'" in str(info.value) and "'test_echo'" in str(info.value)
    with pytest.raises(UserError) as info:
        parse_options({"strategy": "magic"})
    assert "'test_one_liner'" in str(info.value) and "'targeted'" in str(info.value)
    with pytest.raises(
        UserError, match="backend 'sdk' does not apply to provider 'test_echo'; allowed: auto, loud"
    ):
        parse_options(echo_options(backend="sdk"))
    with pytest.raises(
        UserError, match="base_url is only used with provider 'openai' or 'gemini', not 'test_echo'"
    ):
        parse_options(echo_options(base_url="http://x/v1"))


def test_generate_runs_the_new_provider_and_strategy(
    gen_cache: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "echo.jsonl"
    summary = generate(parse_options(echo_options(categories=["gender", "religion"])), out)
    records = read_records(out)
    assert summary.complete and summary.records == len(records) == 6 and summary.cost_usd == 0.0
    assert [r.id for r in summary.written] == [r.id for r in records]
    assert {r.provider for r in records} == {"test_echo"} and {r.strategy for r in records} == {
        "test_one_liner"
    }
    assert {r.model for r in records} == {"echo-1"} and {r.target for r in records} == {"nurse", "pilot"}
    assert {r.params["template"] for r in records} == {"test_one_liner@1"}  # its own prompts_file
    assert sorted(r.category for r in records) == ["gender"] * 3 + ["religion"] * 3
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""  # the library draws and prints nothing


def test_the_gen_command_runs_them_and_calls_the_after_generate_hook(gen_cache: Path, tmp_path: Path) -> None:
    calls: list[tuple[Path, list[str], bool]] = []

    def after_generate(out: Path, records: Sequence[Record], quiet: bool) -> None:
        calls.append((out, [r.id for r in records], quiet))

    app = typer.Typer()
    register_gen(app, after_generate=after_generate)
    options_file = tmp_path / "o.json"
    options_file.write_text(json.dumps(echo_options(count=4)))
    out = tmp_path / "echo.csv"
    result = CliRunner().invoke(app, ["gen", str(out), str(options_file)])
    assert result.exit_code == 0, result.output
    assert "vdata gen" in result.output and "4 of 4" in result.output  # the CLI prints the summary
    assert calls == [(out, [r.id for r in read_records(out)], False)]
    result = CliRunner().invoke(app, ["gen", str(tmp_path / "q.jsonl"), str(options_file), "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    assert calls[-1][2] is True and len(calls) == 2


class FollowsGrammarProvider(Provider):
    """A provider that constrains replies: keeps every grammar it is sent and answers one line per rule."""

    name = "test_grammar"
    constrains_replies = True
    grammars: ClassVar[list[str | None]] = []

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        grammar: str | None = None,
    ) -> Completion:
        self.grammars.append(grammar)
        terms = re.search(r"about: (.*?)\.(?:\n|$)", messages[-1]["content"])
        assert terms is not None
        names = terms.group(1).split(", ")
        n = int(messages[-1]["content"].split()[1])  # "Write N sentences ..."
        text = "\n".join(
            f"The {names[i % len(names)]} number {seed}-{i} fixed the radio alone. | {names[i % len(names)]} | handy"
            for i in range(n)
        )
        return Completion(text, prompt_tokens=10, completion_tokens=10, model=self.model)


register_provider(
    ProviderSpec(
        name="test_grammar",
        description="an in-test provider that constrains its replies",
        default_model="grammar-1",
        factory=lambda options, key: FollowsGrammarProvider(options.model or ""),
        needs_key=False,
        accepts_base_url=False,
        free=True,
        default_per_request=2,
        default_max_tokens=64,
    )
)


def test_a_provider_that_constrains_replies_gets_the_strategy_grammar(
    gen_cache: Path, tmp_path: Path
) -> None:
    options = {
        "provider": "test_grammar",
        "strategy": "targeted",
        "categories": ["gender"],
        "terms": {"gender": ["woman", "man", "aunt"]},
        "count": 4,
        "verify": False,
    }
    FollowsGrammarProvider.grammars.clear()
    records = generate(parse_options(options), tmp_path / "on.jsonl").written
    sent = FollowsGrammarProvider.grammars
    assert sent and all(g is not None and g.startswith("root ::= line0 line1\n") for g in sent)
    assert {r.params["grammar_sha256"] for r in records} <= {
        hashlib.sha256(g.encode()).hexdigest() for g in sent
    }
    assert len(records) == 4

    FollowsGrammarProvider.grammars.clear()
    records = generate(parse_options({**options, "constrain": False}), tmp_path / "off.jsonl").written
    assert FollowsGrammarProvider.grammars and set(FollowsGrammarProvider.grammars) == {None}
    assert not any("grammar_sha256" in r.params for r in records)


def test_targeted_reply_grammar_names_the_terms_in_turn() -> None:
    from vdata.generate.strategies.targeted import Targeted
    from vdata.generate.templates import builtin_template

    strategy = Targeted(
        parse_options({"categories": ["gender"], "per_request": 3}), builtin_template("targeted")
    )
    request = GenRequest([], 0, "gender", context={"terms": ["woman", 'the "x" man']})
    grammar = strategy.reply_grammar(request)
    assert grammar is not None
    root, *rules = grammar.splitlines()
    assert root == "root ::= line0 line1 line2" and [r.split(" ::= ")[0] for r in rules] == [
        "line0",
        "line1",
        "line2",
    ]
    assert (
        rules[0].count('"woman"') == 2 and rules[2].count('"woman"') == 2
    )  # the sentence and the term field
    assert rules[1].count('"the \\"x\\" man"') == 2  # quotes escaped as GBNF wants
    assert strategy.reply_grammar(GenRequest([], 0, "gender")) is None  # no terms: free text


def test_a_line_grammar_without_its_term_slot_is_refused(tmp_path: Path) -> None:
    from vdata.generate.templates import load_template

    path = tmp_path / "prompts.yaml"
    path.write_text(
        "name: targeted\nversion: 1\nstages:\n  sentences:\n    line_grammar: '[a-z]+'\n"
        "    messages:\n      - role: user\n        content: hi\n"
    )
    with pytest.raises(UserError, match=re.escape("line_grammar must be GBNF text with a {term} slot")):
        load_template("targeted", str(path))


def test_registry_imports_the_built_in_modules_only_when_asked() -> None:
    code = (
        "import sys\n"
        "from vdata.generate.options import parse_options\n"
        "from vdata.generate.strategy_registry import strategy_names\n"
        "before = 'vdata.generate.strategies.targeted' in sys.modules\n"
        "names = strategy_names()\n"
        "print(before, 'vdata.generate.strategies.targeted' in sys.modules, 'targeted' in names)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "True", "True"], result.stderr


def test_registry_refuses_a_second_entry_under_one_name() -> None:
    registry: Registry[type] = Registry("strategy", "vdata.prompts")  # a package without entries
    registry.add("mine", OneLiner)
    registry.add("mine", OneLiner)  # the same entry again (a module imported twice) is fine
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("mine", Strategy)
    assert registry.find("other") is None and registry.names() == ["mine"]
    with pytest.raises(
        UserError, match="strategy 'other' is not available in this installation; available: mine"
    ):
        registry.get("other")
