"""Registries: named entries of one kind (generation providers, strategies, ...), each added by its own module.

A registry knows the package its built-in entries live in and imports that package's modules the first
time it is asked for a name it does not hold, or for all names (lm-eval-harness style). So a settings
model can check a name against the registry without importing every entry up front, and adding an
entry is adding one module that calls `Registry.add` (or a decorator built on it). Entries defined
outside the package (a plugin, a test) register themselves the same way once their module is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from vdata.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one `kind` by name; the modules of `package` are imported on the first miss."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name`; a second, different entry under the same name is a bug."""
        if not name:
            raise ValueError(f"a {self.kind} needs a name")
        existing = self._entries.get(name)
        if existing is not None and existing is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({existing!r} and {entry!r})")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget `name` (for entries registered only for a while, e.g. by a test)."""
        self._entries.pop(name, None)

    def load_builtins(self) -> None:
        """Import every module of `package` (once), so its entries register themselves."""
        if self._loaded:
            return
        self._loaded = True  # set first: a module being imported may itself look names up
        try:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self.package}.{module.name}")
        except BaseException:
            self._loaded = False
            raise

    def find(self, name: str) -> T | None:
        """The entry under `name`, or None."""
        if name not in self._entries:
            self.load_builtins()
        return self._entries.get(name)

    def get(self, name: str) -> T:
        """The entry under `name`, or a UserError listing the available names."""
        entry = self.find(name)
        if entry is None:
            raise UserError(
                f"{self.kind} {name!r} is not available in this installation; "
                f"available: {', '.join(self.names())}"
            )
        return entry

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load_builtins()
        return sorted(self._entries)

    def entries(self) -> list[tuple[str, T]]:
        """Every (name, entry), sorted by name."""
        self.load_builtins()
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None
