"""Token prices (data file vdata/prompts/prices.yaml, overridable per run) and spend accounting.

Batch APIs (`"batch": true`) are priced per model by `batch_input_per_mtok`/`batch_output_per_mtok` where
the table or the `prices` option gives them, else at the online price times the table's `batch_discount`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vdata.core.errors import UserError
from vdata.generate.options import GenOptions
from vdata.generate.templates import Message, builtin_data


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


FREE = ModelPrice(0.0, 0.0)


def _price(entry: Mapping[str, Any], batch: bool) -> ModelPrice:
    if not batch:
        return ModelPrice(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
    discount = float(builtin_data("prices").get("batch_discount", 1.0))
    given_in, given_out = entry.get("batch_input_per_mtok"), entry.get("batch_output_per_mtok")
    return ModelPrice(
        float(given_in) if given_in is not None else float(entry["input_per_mtok"]) * discount,
        float(given_out) if given_out is not None else float(entry["output_per_mtok"]) * discount,
    )


def price_for(options: GenOptions, *, batch: bool = False) -> ModelPrice | None:
    """The model's price (online, or through the provider's batch API): options.prices, else the table
    (exact name, else longest prefix); None if unknown."""
    model = options.model or ""
    if options.provider_spec.free:
        return FREE
    if model in options.prices:
        return _price(options.prices[model].model_dump(), batch)
    table = builtin_data("prices")["models"]
    name = model.rsplit("/", 1)[-1]
    for key in sorted(table, key=len, reverse=True):
        if name == key or name.startswith(key):
            return _price(table[key], batch)
    if options.budget_usd is not None:
        raise UserError(
            f"no price known for model {model!r}, so budget_usd cannot be enforced; add "
            f'"prices": {{"{model}": {{"input_per_mtok": ..., "output_per_mtok": ...}}}} to the options'
        )
    return None


def estimate_prompt_tokens(messages: list[Message]) -> int:
    """A conservative (over-)estimate for reserving cost: ~2 characters per token plus per-message overhead."""
    return sum(len(m["content"]) // 2 + 8 for m in messages)


class Ledger:
    """Spent money plus money reserved by requests in flight (worst case), so the budget is never exceeded."""

    def __init__(self, price: ModelPrice | None, budget_usd: float | None) -> None:
        self.price = price
        self.budget = budget_usd
        self.spent = 0.0
        self.reserved = 0.0

    def worst_case(
        self, prompt_tokens_estimate: int, max_tokens: int, price: ModelPrice | None = None
    ) -> float:
        """`price` (e.g. the batch price) instead of the ledger's own, for requests sent another way."""
        price = price or self.price
        return price.cost(prompt_tokens_estimate, max_tokens) if price else 0.0

    def try_reserve(self, amount: float) -> bool:
        if self.budget is not None and self.spent + self.reserved + amount > self.budget:
            return False
        self.reserved += amount
        return True

    def settle(
        self, reserved: float, prompt_tokens: int, completion_tokens: int, price: ModelPrice | None = None
    ) -> float:
        self.reserved = max(0.0, self.reserved - reserved)
        price = price or self.price
        actual = price.cost(prompt_tokens, completion_tokens) if price else 0.0
        self.spent += actual
        return actual
