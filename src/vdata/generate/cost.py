"""Token prices (data file vdata/prompts/prices.yaml, overridable per run) and spend accounting."""

from __future__ import annotations

from dataclasses import dataclass

from vdata.core.errors import UserError
from vdata.generate.options import GenOptions
from vdata.generate.templates import builtin_data


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


FREE = ModelPrice(0.0, 0.0)


def price_for(options: GenOptions) -> ModelPrice | None:
    """The model's price: options.prices, else the table (exact name, else longest prefix); None if unknown."""
    model = options.model or ""
    if options.provider_spec.free:
        return FREE
    if model in options.prices:
        p = options.prices[model]
        return ModelPrice(p.input_per_mtok, p.output_per_mtok)
    table = builtin_data("prices")["models"]
    name = model.rsplit("/", 1)[-1]
    for key in sorted(table, key=len, reverse=True):
        if name == key or name.startswith(key):
            return ModelPrice(float(table[key]["input_per_mtok"]), float(table[key]["output_per_mtok"]))
    if options.budget_usd is not None:
        raise UserError(
            f"no price known for model {model!r}, so budget_usd cannot be enforced; add "
            f'"prices": {{"{model}": {{"input_per_mtok": ..., "output_per_mtok": ...}}}} to the options'
        )
    return None


class Ledger:
    """Spent money plus money reserved by requests in flight (worst case), so the budget is never exceeded."""

    def __init__(self, price: ModelPrice | None, budget_usd: float | None) -> None:
        self.price = price
        self.budget = budget_usd
        self.spent = 0.0
        self.reserved = 0.0

    def worst_case(self, prompt_tokens_estimate: int, max_tokens: int) -> float:
        return self.price.cost(prompt_tokens_estimate, max_tokens) if self.price else 0.0

    def try_reserve(self, amount: float) -> bool:
        if self.budget is not None and self.spent + self.reserved + amount > self.budget:
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, prompt_tokens: int, completion_tokens: int) -> float:
        self.reserved = max(0.0, self.reserved - reserved)
        actual = self.price.cost(prompt_tokens, completion_tokens) if self.price else 0.0
        self.spent += actual
        return actual
