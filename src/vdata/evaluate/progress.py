"""Progress bars that show sentences per second (rich), or nothing when quiet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _rate(task: object) -> str:
    speed = getattr(task, "speed", None)
    return f"{speed:,.0f} sentences/s" if speed else "… sentences/s"


class _RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[no-untyped-def]
        from rich.text import Text

        return Text(_rate(task), style="cyan")


@contextlib.contextmanager
def sentence_progress(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; draws a bar on stderr with a sentences/s column when `enabled`."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
