"""Prompt templates: versioned YAML data files in `vdata/prompts`, overridable by the user's own file.

A template has a `name`, a `version` and `stages`; each stage is a list of chat `messages` whose
`content` holds `{slot}` placeholders, and optionally its own `max_tokens`. A user file (option
`prompts`) holds either one template (with `name`) or a mapping {strategy name: template}; a template
given there replaces the shipped one of the same name. A strategy defined outside vdata brings its own
file (`Strategy.prompts_file`), read like a user file.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vdata.core.errors import UserError
from vdata.core.fingerprint import fingerprint

Message = dict[str, str]


@dataclass(frozen=True)
class Stage:
    messages: tuple[tuple[str, str], ...]
    max_tokens: int | None = None
    # GBNF (llama.cpp grammar) for one reply line, with `{term}` slots: see Strategy.reply_grammar.
    line_grammar: str | None = None

    def slots(self) -> set[str]:
        names = set()
        for _, content in self.messages:
            names |= {f for _, f, _, _ in string.Formatter().parse(content) if f}
        return names


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    stages: dict[str, Stage]
    data: dict[str, Any] = field(default_factory=dict)  # extra keys, e.g. attributed `dimensions`
    source: str = "builtin"

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise UserError(
                f"prompt template {self.name!r} ({self.source}) has no stage {name!r}; "
                f"it needs: {name} (has: {', '.join(self.stages)})"
            )
        return self.stages[name]

    def render(self, stage: str, **slots: Any) -> list[Message]:
        """Chat messages for `stage` with `slots` filled in; a missing slot is a template error."""
        out = []
        for role, content in self.stage(stage).messages:
            try:
                out.append({"role": role, "content": content.format_map(slots)})
            except (KeyError, IndexError, ValueError) as e:
                raise UserError(
                    f"prompt template {self.name!r} ({self.source}), stage {stage!r}: bad placeholder {e}; "
                    f"available: {', '.join('{' + k + '}' for k in sorted(slots))} (write {{{{ }}}} for a literal brace)"
                ) from None
        return out


def messages_sha256(messages: list[Message]) -> str:
    """A record's `prompt_sha256`: the hash of the rendered chat messages (canonical JSON)."""
    return fingerprint(messages)


def _parse_template(raw: Any, source: str) -> Template:
    if not isinstance(raw, dict) or "stages" not in raw or not isinstance(raw["stages"], dict):
        raise UserError(f"{source}: a prompt template needs 'name', 'version' and a 'stages' mapping")
    stages: dict[str, Stage] = {}
    for sname, sraw in raw["stages"].items():
        msgs = sraw.get("messages") if isinstance(sraw, dict) else None
        if not isinstance(msgs, list) or not msgs:
            raise UserError(f"{source}: stage {sname!r} needs a non-empty 'messages' list")
        pairs = []
        for m in msgs:
            if (
                not isinstance(m, dict)
                or m.get("role") not in {"system", "user", "assistant"}
                or not isinstance(m.get("content"), str)
            ):
                raise UserError(
                    f"{source}: stage {sname!r}: each message needs role (system|user|assistant) and content text"
                )
            pairs.append((m["role"], m["content"]))
        line_grammar = sraw.get("line_grammar")
        if line_grammar is not None and (not isinstance(line_grammar, str) or "{term}" not in line_grammar):
            raise UserError(f"{source}: stage {sname!r}: line_grammar must be GBNF text with a {{term}} slot")
        stages[str(sname)] = Stage(tuple(pairs), sraw.get("max_tokens"), line_grammar)
    extra = {k: v for k, v in raw.items() if k not in {"name", "version", "stages"}}
    return Template(str(raw.get("name", "")), int(raw.get("version", 1)), stages, extra, source)


@cache
def builtin_template(name: str) -> Template:
    res = resources.files("vdata.prompts").joinpath(f"{name}.yaml")
    if not res.is_file():
        raise UserError(f"no built-in prompt template for strategy {name!r}")
    return _parse_template(yaml.safe_load(res.read_text(encoding="utf-8")), f"vdata/prompts/{name}.yaml")


@cache
def builtin_data(name: str) -> dict[str, Any]:
    """A non-template data file in vdata/prompts (terms.yaml, prices.yaml)."""
    return yaml.safe_load(
        resources.files("vdata.prompts").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    )


def user_templates(path: Path) -> dict[str, Template]:
    if not path.is_file():
        raise UserError(
            f"prompts file {path} not found; set 'prompts' to a YAML file of templates or remove it"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"prompts file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if isinstance(raw, dict) and "stages" in raw:
        t = _parse_template(raw, str(path))
        if not t.name:
            raise UserError(f"{path}: a single template needs 'name' (the strategy it replaces)")
        return {t.name: t}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a template or a mapping {{strategy: template}}")
    out = {}
    for name, t in raw.items():
        tpl = _parse_template(t, f"{path}:{name}")
        out[str(name)] = Template(str(name), tpl.version, tpl.stages, tpl.data, tpl.source)
    return out


def load_template(strategy: str, prompts_file: str | None, default_file: Path | None = None) -> Template:
    """The user's template for `strategy` (option `prompts`), else `default_file`'s, else the shipped one."""
    for path in (Path(prompts_file) if prompts_file else None, default_file):
        if path is not None:
            custom = user_templates(path)
            if strategy in custom:
                return custom[strategy]
    return builtin_template(strategy)
