"""Benchmark definitions: what a YAML file in ``vdata/evaluate/benchmarks/`` says about one benchmark.

A definition names its task type (a module in ``vdata/evaluate/tasks/``), its data files (relative to
the data dir, pinned in ``vdata/data/benchmarks.tsv``) and its groups (domains / bias types). The
registry (``registry.py``) collects them; this module only parses and answers questions about one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vdata.core.errors import UserError


@dataclass(frozen=True)
class BenchmarkDef:
    name: str
    task: str
    description: str
    groups: tuple[str, ...]
    splits: dict[str, str] = field(default_factory=dict)
    default_split: str | None = None
    files: tuple[str, ...] = ()
    loader: str | None = None  # paired_preference: the file format (a key of `pairs.LOADERS`)
    aliases: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pooled group views
    title: str = ""  # the name in words ("CrowS-Pairs"); defaults to `name`

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)

    def data_files(self, split: str | None) -> tuple[str, ...]:
        """Benchmark files (paths relative to the data dir) used for `split`."""
        if self.splits:
            chosen = split or self.default_split
            if chosen not in self.splits:
                raise UserError(f"{self.name} has no split {chosen!r}; use one of {', '.join(self.splits)}")
            return (self.splits[chosen],)
        return self.files

    def resolve_groups(self, requested: list[str] | None) -> list[str]:
        """Map user bias types (aliases such as race -> race-color) to this benchmark's groups."""
        if not requested:
            return list(self.groups)
        chosen = [self.aliases.get(g, g) for g in requested]
        return [g for g in self.groups if g in chosen]


def parse_definition(raw: Mapping[str, Any]) -> BenchmarkDef:
    """A definition from a YAML mapping (the task name is checked by the registry)."""
    return BenchmarkDef(
        name=raw["name"],
        task=raw["task"],
        description=raw.get("description", ""),
        groups=tuple(raw["groups"]),
        splits=dict(raw.get("splits") or {}),
        default_split=raw.get("default_split"),
        files=tuple(raw.get("files") or ()),
        loader=raw.get("loader"),
        aliases=dict(raw.get("aliases") or {}),
        summaries={k: tuple(v) for k, v in (raw.get("summaries") or {}).items()},
        title=raw.get("title", ""),
    )
