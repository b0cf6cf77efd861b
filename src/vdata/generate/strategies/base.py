"""The strategy interface: how prompts are built and replies are read.

A strategy is one class, registered by name with `@register`. The engine drives it like this::

    strategy = StrategyClass(options, template)          # template: vdata/prompts/<name>.yaml or the user's
    await strategy.prepare(ask)                           # one-off stages (term lists, attribute values)
    while more records are needed:
        for request in strategy.next_requests(state, n):  # up to n new requests; [] = "wait" or "done"
            reply = await provider(request.messages)      # cached, rate-limited, retried, costed
            extraction = strategy.parse(reply, request)   # candidate triples + drop reasons
            ...records checked, de-duplicated, journalled, appended to state.accepted

The two methods meant for users to override (curator style) are:

* ``prompt(stage, **slots) -> list[Message]``: render chat messages from the template's stage.
* ``parse(text, request) -> Extraction``: turn a reply into checked triples (default: `parse_reply`).

Multi-round strategies (e.g. loss-guided prompting, which scores what was accepted so far and asks for
more of what the model still gets wrong) override ``next_requests``. It receives a `RunState` with the
records accepted so far (in order), how many requests are issued/in flight/completed, and the round
number (incremented each time the strategy returned [] while requests were in flight and those then
completed). Returning [] while requests are in flight makes the engine wait for them and call again;
returning [] with nothing in flight ends the run. Everything a request needs later (its category,
AttrPrompt configuration, strategy-private context) travels in the `GenRequest`.

Determinism: request i must be rendered from (options.seed, i) and the state alone, so a rerun renders
the same prompts and is served from the response cache. Use `self.rng(i)`.

Strategy-specific settings come from the `strategy_options` option; declare them as a pydantic model in
the class attribute ``Options`` (extra keys are rejected with a clear message).

The prompt template is `vdata/prompts/<name>.yaml`; a strategy defined outside vdata points
``prompts_file`` at its own YAML (the `prompts` option still overrides either).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from vdata.core.records import Record, normalise_text
from vdata.core.settings import validate_settings
from vdata.generate.options import GenOptions
from vdata.generate.parse import COPIED_EXAMPLE, Extraction, parse_reply
from vdata.generate.strategy_registry import STRATEGIES
from vdata.generate.templates import Message, Template

# ask(messages, stage, max_tokens) -> reply text; cached, retried and costed like any request.
AskFn = Callable[[list[Message], str, int | None], Awaitable[str]]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class GenRequest:
    """One chat request. `sample_index` is unique per run and keys the response cache."""

    messages: list[Message]
    sample_index: int
    category: str
    stage: str = "sentences"
    attributes: dict[str, Any] | None = None
    max_tokens: int | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunState:
    """What a strategy may look at when planning requests (read-only by convention)."""

    count: int
    accepted: Sequence[Record] = ()
    issued: int = 0
    in_flight: int = 0
    completed: int = 0
    round: int = 0


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def category_words(category: str) -> str:
    """'race+gender' -> 'race and gender'; 'sexual-orientation' -> 'sexual orientation'."""
    return " and ".join(p.replace("-", " ") for p in category.split("+"))


class Strategy:
    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    # Label stored in `category` when a strategy is not category-conditional.
    fixed_category: ClassVar[str | None] = None
    # Its prompt template when not shipped as vdata/prompts/<name>.yaml (a strategy outside vdata).
    prompts_file: ClassVar[Path | None] = None

    def __init__(self, options: GenOptions, template: Template, out_path: Path | None = None) -> None:
        self.options = options
        self.template = template
        self.out_path = out_path  # where the run writes; strategies may keep reusable state beside it
        allowed = ", ".join(self.Options.model_fields) or "none"
        self.settings = validate_settings(
            self.Options,
            options.strategy_options,
            source=f"strategy {self.name!r}",
            hint=f"Strategy {self.name!r} accepts in strategy_options: {allowed}.",
            prefix="strategy_options.",
        )
        self.next_index = 0

    # -- user-extendable -------------------------------------------------------------------------
    def prompt(self, stage: str, **slots: Any) -> list[Message]:
        """Render the chat messages of a template stage."""
        return self.template.render(stage, **slots)

    def parse(self, text: str, request: GenRequest) -> Extraction:
        """Turn one reply into checked triples with drop reasons; sentences copied from the prompt's
        few-shot examples are dropped (small models echo them)."""
        result = parse_reply(text)
        shown = {
            normalise_text(line.split("|")[0])
            for m in request.messages
            if m["role"] == "assistant"
            for line in m["content"].splitlines()
        }
        kept = [t for t in result.triples if normalise_text(t.text) not in shown]
        if len(kept) != len(result.triples):
            result.drops[COPIED_EXAMPLE] += len(result.triples) - len(kept)
            result.triples = kept
        return result

    # -- engine hooks ----------------------------------------------------------------------------
    async def prepare(self, ask: AskFn) -> None:
        """One-off stages before sentence requests (default: none)."""

    def build_request(self, index: int) -> GenRequest:
        """Request number `index` of a single-round strategy."""
        raise NotImplementedError

    def next_requests(self, state: RunState, n: int) -> list[GenRequest]:
        """Up to `n` new requests. Single-round strategies produce an endless deterministic stream."""
        out = []
        for _ in range(n):
            out.append(self.build_request(self.next_index))
            self.next_index += 1
        return out

    # -- helpers ---------------------------------------------------------------------------------
    def rng(self, index: int, salt: str = "") -> random.Random:
        return random.Random(f"{self.options.seed}:{self.name}:{salt}:{index}")

    def category_for(self, index: int) -> str:
        if self.fixed_category is not None:
            return self.fixed_category
        cats = self.options.categories
        return cats[index % len(cats)]

    def reply_grammar(self, request: GenRequest) -> str | None:
        """A GBNF grammar the reply to `request` must follow, for providers that constrain decoding (the
        local llama.cpp model); None: the reply is free text, checked by `parse` as usual (default)."""
        return None

    def stage_max_tokens(self, stage: str) -> int | None:
        return self.template.stage(stage).max_tokens


S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: make a strategy available as option `"strategy": cls.name`."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a `name`")
    STRATEGIES.add(cls.name, cls)
    return cls
