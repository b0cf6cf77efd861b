"""The progress line of a run (records, tokens, cost, rate, requests), fed from the engine's running `Summary`."""

from __future__ import annotations

import time

from vdata.core.progress import ProgressTask
from vdata.generate.summary import Summary

MIN_UPDATE_S = 0.1


def progress_info(summary: Summary, seconds: float) -> str:
    new = summary.records - summary.resumed
    cost = f"${summary.cost_usd:.4f}" if summary.cost_usd is not None else "cost n/a"
    return (
        f"{summary.prompt_tokens + summary.completion_tokens:,} tok · {cost} · "
        f"{new / max(seconds, 1e-9):.2f} rec/s · "
        f"{summary.requests} req ({summary.cached} cached, {summary.failed} failed)"
    ) + (f" · batch: {summary.batch_state}" if summary.batch_state else "")


class SummaryProgress:
    """Calls `task.update` with the summary's figures, at most every MIN_UPDATE_S: redrawing per reply
    would cost more CPU than the reply itself."""

    def __init__(self, task: ProgressTask) -> None:
        self.task = task
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        if now - self._last < MIN_UPDATE_S:
            return
        self._last = now
        self.task.update(completed=summary.records, info=progress_info(summary, now - self.started))
