"""The strategy registry: strategy classes by name, each registered by its own module (`@register`).

It sits below both the options model, which checks the `strategy` option against it, and the strategy
classes, which are built on the options model; so it holds classes without naming their base class
(`vdata.generate.strategies.get_strategy` returns them typed). The built-in strategies are the modules
of `vdata.generate.strategies`, imported on the first look-up.
"""

from __future__ import annotations

from vdata.core.registry import Registry

STRATEGIES: Registry[type] = Registry("strategy", "vdata.generate.strategies")


def strategy_names() -> list[str]:
    """Every strategy the `strategy` option accepts (and a record's `strategy` field may name)."""
    return STRATEGIES.names()
