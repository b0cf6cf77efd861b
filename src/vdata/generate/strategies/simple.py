"""`simple` (SimPrompt baseline): the plain class-conditional request."""

from __future__ import annotations

from typing import ClassVar

from vdata.generate.strategies.base import GenRequest, Strategy, category_words, register


@register
class Simple(Strategy):
    name: ClassVar[str] = "simple"

    def build_request(self, index: int) -> GenRequest:
        category = self.category_for(index)
        messages = self.prompt(
            "sentences",
            category=category,
            category_words=category_words(category),
            n=self.options.per_request,
        )
        return GenRequest(messages, index, category)
