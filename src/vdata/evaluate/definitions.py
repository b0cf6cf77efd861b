"""Benchmark definitions: YAML files in ``vdata/evaluate/benchmarks/`` plus the small loader functions
they name. Adding a paired-preference benchmark (WinoBias, another BiasTestGPT file, ...) means adding
one YAML file and, if its file format is new, one loader in ``pairs.LOADERS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from vdata.core.errors import UserError

TASKS = ("stereoset_intrasentence", "paired_preference")


@dataclass(frozen=True)
class BenchmarkDef:
    name: str
    task: str
    description: str
    groups: tuple[str, ...]
    splits: dict[str, str] = field(default_factory=dict)
    default_split: str | None = None
    files: tuple[str, ...] = ()
    loader: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, tuple[str, ...]] = field(default_factory=dict)

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


def _parse(raw: dict[str, Any]) -> BenchmarkDef:
    if raw.get("task") not in TASKS:
        raise ValueError(f"benchmark {raw.get('name')}: unknown task {raw.get('task')!r}")
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
    )


@cache
def all_benchmarks() -> dict[str, BenchmarkDef]:
    folder = resources.files("vdata.evaluate").joinpath("benchmarks")
    defs = [
        _parse(yaml.safe_load(f.read_text(encoding="utf-8")))
        for f in sorted(folder.iterdir(), key=lambda p: p.name)
        if f.name.endswith(".yaml")
    ]
    return {d.name: d for d in defs}


def get_benchmarks(names: list[str]) -> list[BenchmarkDef]:
    known = all_benchmarks()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]
