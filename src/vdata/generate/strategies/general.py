"""`general` (Han et al. 2024): anti-stereotype triples about any social group; no category given."""

from __future__ import annotations

from typing import ClassVar

from vdata.generate.strategies.base import GenRequest, Strategy, register


@register
class General(Strategy):
    name: ClassVar[str] = "general"
    fixed_category: ClassVar[str | None] = "general"

    def build_request(self, index: int) -> GenRequest:
        return GenRequest(self.prompt("sentences", n=self.options.per_request), index, "general")
