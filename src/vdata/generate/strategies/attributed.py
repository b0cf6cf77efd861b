"""`attributed` (AttrPrompt): each request samples a fresh configuration of attribute values.

Dimensions and values come from (first match wins): the `attributes` option; the `attributes_file`
(values proposed earlier); the LLM, asked once per dimension when `propose_attributes` is true (the
result is saved to `attributes_file` for reuse); the template's default `dimensions`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vdata.core.errors import UserError
from vdata.core.io import write_text_atomic
from vdata.generate.parse import parse_terms
from vdata.generate.strategies.base import AskFn, GenRequest, Strategy, category_words, register


class AttributedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_values: int = Field(8, ge=2, le=100, description="Values asked for per dimension when proposing.")


def load_attribute_file(path: Path) -> dict[str, list[str]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"attributes file {path} is not valid JSON ({e}); fix or delete it") from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in raw.values()
    ):
        raise UserError(f"attributes file {path} must map each dimension to a non-empty list of strings")
    return raw


@register
class Attributed(Strategy):
    name: ClassVar[str] = "attributed"
    Options: ClassVar[type[BaseModel]] = AttributedOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attributes_path: Path | None = None
        if self.options.attributes_file:
            self.attributes_path = Path(self.options.attributes_file)
        elif self.out_path is not None:
            self.attributes_path = self.out_path.with_name(self.out_path.name + ".attributes.json")
        defaults = self.template.data.get("dimensions") or {}
        self.dimensions: dict[str, list[str]] = {k: [str(x) for x in v] for k, v in defaults.items()}

    async def prepare(self, ask: AskFn) -> None:
        if self.options.attributes:
            self.dimensions = {k: list(v) for k, v in self.options.attributes.items() if v}
            if not self.dimensions:
                raise UserError(
                    'option \'attributes\' has no dimension with values; give e.g. {"tone": ["formal"]}'
                )
            return
        path = self.attributes_path
        if path is not None and path.exists():
            self.dimensions = load_attribute_file(path)
            return
        if not self.options.propose_attributes:
            return
        topic = category_words("+".join(self.options.categories))
        proposed: dict[str, list[str]] = {}
        for dimension, fallback in self.dimensions.items():
            messages = self.prompt(
                "propose", dimension=dimension, category_words=topic, n_values=self.settings.n_values
            )
            reply = await ask(messages, f"propose:{dimension}", self.stage_max_tokens("propose"))
            values = parse_terms(reply, limit=self.settings.n_values)
            proposed[dimension] = values if len(values) >= 2 else fallback
        self.dimensions = proposed
        if path is not None:
            write_text_atomic(path, json.dumps(proposed, indent=2, ensure_ascii=False) + "\n")

    def configuration(self, index: int) -> dict[str, str]:
        rng = self.rng(index, "attributes")
        return {dim: rng.choice(values) for dim, values in sorted(self.dimensions.items())}

    def build_request(self, index: int) -> GenRequest:
        category = self.category_for(index)
        config = self.configuration(index)
        lines = "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in config.items())
        messages = self.prompt(
            "sentences",
            category=category,
            category_words=category_words(category),
            n=self.options.per_request,
            attribute_lines=lines,
        )
        return GenRequest(messages, index, category, attributes=config)
