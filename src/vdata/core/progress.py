"""Progress bars: one Rich set-up for every stage, or nothing when quiet.

Library code takes a `ProgressFactory` (default: none) so it never draws by itself; the CLI passes
`rich_progress` when the user did not ask for `--quiet`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text


class ProgressTask(Protocol):
    def advance(self, n: float = 1) -> None: ...

    def update(
        self, *, completed: float | None = None, total: float | None = None, info: str = ""
    ) -> None: ...


class NullTask:
    """A task that draws nothing."""

    def advance(self, n: float = 1) -> None:
        return None

    def update(self, *, completed: float | None = None, total: float | None = None, info: str = "") -> None:
        return None


ProgressFactory = Callable[[str, float | None, str], contextlib.AbstractContextManager[ProgressTask]]
"""(description, total, unit) -> context manager yielding a task."""


@contextlib.contextmanager
def no_progress(description: str, total: float | None = None, unit: str = "") -> Iterator[ProgressTask]:
    yield NullTask()


class _RateColumn(TextColumn):
    def __init__(self, unit: str) -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task: Any) -> Text:
        speed = getattr(task, "speed", None)
        rate = f"{speed:,.0f} {self.unit}/s" if speed else f"… {self.unit}/s"
        return Text(rate, style="cyan")


class _RichTask:
    def __init__(self, bar: Progress, task_id: Any) -> None:
        self.bar, self.task_id = bar, task_id

    def advance(self, n: float = 1) -> None:
        self.bar.advance(self.task_id, n)

    def update(self, *, completed: float | None = None, total: float | None = None, info: str = "") -> None:
        self.bar.update(self.task_id, completed=completed, total=total, info=info)


def rich_progress_factory(console: Console | None = None, transient: bool = False) -> ProgressFactory:
    """A factory drawing bars on `console` (default: stderr): description, bar, n/total, rate, info, time."""

    @contextlib.contextmanager
    def factory(description: str, total: float | None = None, unit: str = "items") -> Iterator[ProgressTask]:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(unit),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console or Console(stderr=True), transient=transient) as bar:
            yield _RichTask(bar, bar.add_task(description, total=total, info=""))

    return factory


def progress_factory(enabled: bool, console: Console | None = None) -> ProgressFactory:
    """`rich_progress_factory(console)` when enabled, else `no_progress`."""
    return rich_progress_factory(console) if enabled else no_progress
