"""The benchmark registry: every benchmark `vdata eval` knows, by name, with its task type.

The built-in benchmarks are the YAML files in ``vdata/evaluate/benchmarks/``; `register_benchmark`
adds one at run time (tests, plugins). A definition is accepted only if its task type is registered
(``vdata/evaluate/tasks/``), so a typo in a YAML file fails here, not half-way through a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from vdata.core.errors import UserError
from vdata.evaluate.definitions import BenchmarkDef, parse_definition

if TYPE_CHECKING:
    from vdata.evaluate.tasks.base import TaskType

# The task types (and through them the model API) are imported on first use, not with this module: the
# settings check benchmark names here, and `vdata serve` must start without the model code.

_BENCHMARKS: dict[str, BenchmarkDef] = {}
_BUILTIN_LOADED = False


def register_benchmark(definition: BenchmarkDef | Mapping[str, Any]) -> BenchmarkDef:
    """Add (or replace) a benchmark, given as a definition or as its YAML mapping."""
    from vdata.evaluate.tasks import get_task_type, task_names

    d = definition if isinstance(definition, BenchmarkDef) else parse_definition(definition)
    if get_task_type(d.task) is None:
        raise ValueError(
            f"benchmark {d.name}: unknown task {d.task!r}; registered: {', '.join(task_names())}"
        )
    _BENCHMARKS[d.name] = d
    return d


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    folder = resources.files("vdata.evaluate").joinpath("benchmarks")
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            register_benchmark(yaml.safe_load(f.read_text(encoding="utf-8")))


def all_benchmarks() -> dict[str, BenchmarkDef]:
    """Every known benchmark by name: the built-in YAML files (file-name order), then registered ones."""
    _load_builtin()
    return dict(_BENCHMARKS)


def get_benchmarks(names: Sequence[str]) -> list[BenchmarkDef]:
    known = all_benchmarks()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def task_of(definition: BenchmarkDef) -> TaskType[Any, Any]:
    from vdata.evaluate.tasks import get_task_type

    task = get_task_type(definition.task)
    if task is None:  # registered definitions were checked; this guards hand-built ones
        raise ValueError(f"benchmark {definition.name}: unknown task {definition.task!r}")
    return task
