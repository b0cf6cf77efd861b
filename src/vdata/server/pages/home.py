"""`/`: what the dataset is, its counts and growth, its latest bias figures, how to contribute."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from vdata.server import benchmarks
from vdata.server.pages.render import caches, render
from vdata.server.state import ServerState

# Sections of `vdata audit`'s report.json whose numbers the home page shows, with their headings.
AUDIT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("groups_summary", "Social groups"),
    ("diversity", "Diversity"),
    ("direction", "Stereotype direction"),
    ("hygiene", "Hygiene"),
)


def audit_figures(path: Path | None) -> dict[str, Any] | None:
    """The headline numbers of an audit report.json (scalars of AUDIT_SECTIONS), or None when there is
    no readable report: the page then says plainly that the figures are not yet measured."""
    if path is None or not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    sections = []
    for key, heading in AUDIT_SECTIONS:
        section = report.get(key)
        if isinstance(section, dict):
            rows = [
                (name.replace("_", " "), value)
                for name, value in section.items()
                if isinstance(value, int | float) or name == "reason"
            ]
            if rows:
                sections.append((heading, rows))
    measured = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d")
    return {"records": report.get("n_records"), "measured": measured, "sections": sections}


def _month_chart(by_month: list[tuple[str, int]]) -> dict[str, Any]:
    """Bars and cumulative line of approved records per month, in SVG user units (the template draws it)."""
    width, height, pad = 640, 180, 24
    if not by_month:
        return {"width": width, "height": height, "bars": [], "line": "", "top": 0}
    cumulative, total = [], 0
    for _, n in by_month:
        total += n
        cumulative.append(total)
    step = (width - 2 * pad) / len(by_month)
    scale = (height - 2 * pad) / max(total, 1)
    bars, points = [], []
    for i, ((month, n), running) in enumerate(zip(by_month, cumulative, strict=True)):
        x = pad + i * step
        h = n * scale
        bars.append(
            {
                "x": round(x + step * 0.15, 1),
                "y": round(height - pad - h, 1),
                "w": round(step * 0.7, 1),
                "h": round(h, 1),
                "month": month,
                "n": n,
                "running": running,
            }
        )
        points.append(f"{x + step / 2:.1f},{height - pad - running * scale:.1f}")
    return {"width": width, "height": height, "bars": bars, "line": " ".join(points), "top": total}


HOME_BENCHMARKS = 50  # the newest runs the home page charts


async def home_page(request: Request) -> HTMLResponse:
    state: ServerState = request.app.state.vdata
    figures = await run_in_threadpool(caches(request).overview, state.read_engine)
    runs = await run_in_threadpool(benchmarks.history, state.read_engine, HOME_BENCHMARKS)
    report = state.settings.audit_report
    return render(
        request,
        "home.html",
        {
            "figures": figures,
            "approved": figures["by_status"].get("approved", 0),
            "chart": _month_chart(figures["by_month"]),
            "audit": await run_in_threadpool(audit_figures, report),
            "benchmark_runs": runs,
            "benchmark_chart": benchmarks.history_chart(runs),
            "server_url": str(request.base_url).rstrip("/"),
        },
    )
