"""The task-type interface and its registry.

A task type turns a benchmark definition's files into items (`load`), scores them with a model
(`score`) or reads their scores from a predictions file (`scores_from_predictions`), and aggregates the
scores into the results block of that benchmark (`aggregate`). Both paths share `aggregate`, so a
re-aggregated predictions file gives the very numbers of the run that wrote it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from vdata.evaluate.definitions import BenchmarkDef
from vdata.lm.scorer import Scorer

D = TypeVar("D")  # what `load` returns: the benchmark's selected items (and whatever checks need)
S = TypeVar("S")  # the scores `aggregate` reads


class Scored(NamedTuple, Generic[S]):
    scores: S
    predictions: dict[str, Any]  # merged into the predictions document (`--predictions-out`)


class TaskType(ABC, Generic[D, S]):
    """One kind of benchmark (StereoSet intrasentence, paired preference, ...); see the module doc."""

    name: ClassVar[str]
    # Whether the task scores (more, less) sentence pairs: those follow `--crows-protocol`.
    scores_pairs: ClassVar[bool] = False

    @abstractmethod
    def load(
        self,
        benchmark: BenchmarkDef,
        files: Mapping[str, Path],
        groups: Sequence[str],
        *,
        split: str,
        limit: int | None,
    ) -> D:
        """The items of `groups` (first `limit` per group) from the located, checksummed `files`."""

    @abstractmethod
    def score(self, benchmark: BenchmarkDef, data: D, scorer: Scorer) -> Scored[S]:
        """Score the items with the model behind `scorer`."""

    @abstractmethod
    def scores_from_predictions(self, benchmark: BenchmarkDef, data: D, doc: Any, source: Path) -> S:
        """The items' scores from a predictions document, validated against the data (UserError)."""

    @abstractmethod
    def aggregate(
        self, benchmark: BenchmarkDef, data: D, scores: S, *, resamples: int, seed: int
    ) -> dict[str, Any]:
        """The benchmark's block of the results file."""


_TASK_TYPES: dict[str, TaskType[Any, Any]] = {}

T = TypeVar("T", bound=type[TaskType[Any, Any]])


def register_task(cls: T) -> T:
    """Class decorator: make the task type available to benchmark definitions under `cls.name`."""
    _TASK_TYPES[cls.name] = cls()
    return cls


def registered_tasks() -> Mapping[str, TaskType[Any, Any]]:
    return _TASK_TYPES
