"""Task types of `vdata eval`, one module each, registered by name with `@register_task` (see `base`).

The modules of this package are imported on first lookup, so adding a task type is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from vdata.evaluate.tasks.base import TaskType, registered_tasks


def _load_builtin() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")


def task_names() -> list[str]:
    _load_builtin()
    return sorted(registered_tasks())


def get_task_type(name: str) -> TaskType[Any, Any] | None:
    """The registered task type called `name`, or None."""
    if name not in registered_tasks():
        _load_builtin()
    return registered_tasks().get(name)
