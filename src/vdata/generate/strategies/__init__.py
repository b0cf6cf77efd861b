"""Generation strategies: a registry of `Strategy` classes, one module each (see `base` for the interface).

Modules in this package are imported on first use, so adding a strategy is adding one module whose
class is decorated with `@register`.
"""

from __future__ import annotations

import importlib
import pkgutil

from vdata.core.errors import UserError
from vdata.generate.strategies.base import GenRequest, RunState, Strategy, register, registry

__all__ = ["GenRequest", "RunState", "Strategy", "get_strategy", "register", "registry"]


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")


def get_strategy(name: str) -> type[Strategy]:
    if name not in registry():
        _load_all()
    if name not in registry():
        raise UserError(
            f"strategy {name!r} is not available in this installation; available: {', '.join(sorted(registry()))}"
        )
    return registry()[name]
