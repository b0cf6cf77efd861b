"""Rich progress (records, tokens, cost, rate) during a run and the end-of-run summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from vdata.generate.engine import Engine, Summary

MIN_UPDATE_S = 0.1


class GenProgress:
    def __init__(self, console: Console, total: int, disabled: bool = False) -> None:
        self.console = console
        self.disabled = disabled
        self.progress = Progress(
            TextColumn("[bold]gen[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            disable=disabled,
            transient=False,
        )
        self.task = self.progress.add_task("gen", total=total, info="starting")
        self._last = 0.0

    def __enter__(self) -> GenProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, engine: Engine) -> None:
        if self.disabled:
            return
        now = time.monotonic()
        if now - self._last < MIN_UPDATE_S:
            return  # redrawing per reply would cost more CPU than the reply itself
        self._last = now
        s = engine.summary
        elapsed = max(now - engine.started, 1e-9)
        new = len(engine.accepted) - s.resumed
        cost = f"${s.cost_usd:.4f}" if s.cost_usd is not None else "cost n/a"
        info = (
            f"{s.prompt_tokens + s.completion_tokens:,} tok · {cost} · {new / elapsed:.2f} rec/s · "
            f"{s.requests} req ({s.cached} cached, {s.failed} failed)"
        )
        self.progress.update(self.task, completed=len(engine.accepted), info=info)

    def log(self, message: str) -> None:
        if not self.disabled:
            self.console.print(f"[yellow]{message}[/]", highlight=False, markup=False)


def print_summary(console: Console, s: Summary) -> None:
    table = Table(title=f"vdata gen → {s.out}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("records", f"{s.records} of {s.wanted}" + (f" ({s.resumed} resumed)" if s.resumed else ""))
    drops = ", ".join(f"{k} {v}" for k, v in s.drops.most_common()) or "none"
    table.add_row("dropped", f"{sum(s.drops.values())} ({drops})")
    table.add_row(
        "requests", f"{s.requests} sent, {s.cached} from cache, {s.failed} failed, {s.retries} retries"
    )
    if s.errors:
        table.add_row("errors", ", ".join(f"{k} x{v}" for k, v in s.errors.most_common()))
    table.add_row("tokens", f"{s.prompt_tokens:,} prompt + {s.completion_tokens:,} completion")
    table.add_row(
        "cost", f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown (no price for this model)"
    )
    table.add_row("time", f"{s.seconds:.1f} s")
    console.print(table)
    if s.stop_reason:
        console.print(f"[yellow]{s.stop_reason}[/]", highlight=False)
    if not s.complete:
        console.print("[yellow]incomplete: rerun the same command to continue (cached replies are free)[/]")
