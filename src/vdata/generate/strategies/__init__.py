"""Generation strategies: `Strategy` classes registered by name, one module each (see `base` for the interface).

The modules of this package are imported on the first look-up, so adding a strategy is adding one
module whose class is decorated with `@register` (plus its prompt template, `vdata/prompts/<name>.yaml`).
"""

from __future__ import annotations

from vdata.generate.strategies.base import GenRequest, RunState, Strategy, register
from vdata.generate.strategy_registry import STRATEGIES

__all__ = ["GenRequest", "RunState", "Strategy", "get_strategy", "register"]


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`, or a UserError listing the available ones."""
    cls = STRATEGIES.get(name)
    if not issubclass(cls, Strategy):  # `register` only adds Strategy subclasses
        raise TypeError(f"strategy {name!r} is {cls!r}, not a Strategy")
    return cls
