"""The home page's benchmark history in a real Chromium: runs imported with `vdata benchmarks import` (as
the operator's cron or `vdata serve --benchmark-every` does) drawn as an SVG chart beside the data, with
one point and one interval whisker per measured category and run, tooltips, the latest run's table and the
README badge. Screenshot: docs/screenshots/home-benchmarks.png."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, expect

from benchmark_documents import benchmark_document, measured_category, skipped_category

SRC = Path(__file__).resolve().parents[2] / "src"
# (created, snapshot id, {category: (bias cut %, its CI, verdict)}); religion is skipped in the first run.
RUNS: tuple[tuple[str, str, dict[str, tuple[float, list[float], str]]], ...] = (
    ("2026-10-05T07:00:00Z", "20261005T000000Z", {"gender": (12.0, [-9.0, 30.0], "no effect")}),
    (
        "2026-11-02T07:00:00Z",
        "20261102T000000Z",
        {"gender": (15.6, [-8.1, 33.8], "no effect"), "race": (76.2, [53.7, 95.0], "debiases")},
    ),
    (
        "2026-11-30T07:00:00Z",
        "20261130T000000Z",
        {
            "gender": (31.5, [8.9, 50.1], "debiases"),
            "race": (84.7, [63.0, 99.0], "debiases"),
            "religion": (22.9, [-9.9, 56.5], "no effect"),
        },
    ),
)


def _document(created: str, snapshot_id: str, measured: dict[str, tuple[float, list[float], str]]) -> dict:
    categories = {name: skipped_category() for name in ("gender", "race", "religion")}
    categories |= {name: measured_category(cut, ci, verdict) for name, (cut, ci, verdict) in measured.items()}
    return benchmark_document(created, categories, snapshot_id)


def test_home_page_draws_the_benchmark_history(
    page: Page, live_server: str, live_db_url: str, tmp_path: Path, screenshots_dir: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for created, snapshot_id, measured in RUNS:
        path = tmp_path / f"{snapshot_id}.json"
        path.write_text(json.dumps(_document(created, snapshot_id, measured)), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "vdata", "benchmarks", "import", str(path), "--db", live_db_url],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(live_server)
    section = page.locator("#benchmarks")
    chart = section.locator("svg.chart.bench")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 60  # laid out, not collapsed

    # The x axis names each run's date.
    expect(chart.locator("text.run")).to_have_text(["2026-10-05", "2026-11-02", "2026-11-30"])
    # One series per category ever measured; one point (and whisker) per measured run of it.
    expect(chart.locator("g.series")).to_have_count(3)
    points = {"gender": 3, "race": 2, "religion": 1}
    for index, (name, count) in enumerate(sorted(points.items())):
        series = chart.locator(f"g.series.s{index}")
        expect(series.locator("circle")).to_have_count(count)
        expect(series.locator("line.ci")).to_have_count(count)
        expect(section.locator(f".legend.s{index}")).to_have_text(name)
    # Points run left to right in date order, and a larger cut is drawn higher (smaller y).
    gender = chart.locator("g.series.s0 circle")
    xs = [float(gender.nth(i).get_attribute("cx") or "nan") for i in range(3)]
    ys = [float(gender.nth(i).get_attribute("cy") or "nan") for i in range(3)]
    assert xs == sorted(xs) and ys[2] < ys[1] < ys[0]
    expect(chart.locator("g.series.s1 circle title").last).to_have_text(
        "race, 2026-11-30T07:00:00Z (snapshot 20261130T000000Z): bias cut 84.7%"
    )

    # The latest run's table: every category, with its cut, interval and verdict.
    table = section.locator("table.counts")
    expect(table.locator("caption")).to_contain_text("Latest run, 2026-11-30, snapshot 20261130T000000Z")
    expect(table.locator("tr")).to_have_count(4)
    expect(table.locator("tr", has_text="race")).to_contain_text("85% [63, 99]")
    expect(table.locator("tr", has_text="religion")).to_contain_text("no effect")
    section.screenshot(path=str(screenshots_dir / "home-benchmarks.png"))

    # The README badge the page advertises renders as an image in the browser.
    page.set_content(f'<img id="badge" src="{live_server}/v1/benchmarks/badge.svg?category=race">')
    badge = page.locator("#badge")
    expect(badge).to_be_visible()
    assert page.evaluate("document.getElementById('badge').naturalWidth") > 50
    assert errors == []
