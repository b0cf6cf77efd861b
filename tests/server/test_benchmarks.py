"""The dataset's benchmark history: `vdata benchmarks import`, GET /v1/benchmarks, /latest, the badge,
the home page chart, and `vdata serve --benchmark-every` running a real command on the latest snapshot."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmark_documents import benchmark_document, measured_category, skipped_category
from vdata.server.settings import parse_duration

from .benchmark_stand_in import document
from .conftest import Server, new_db_url, start_server
from .snapshot_helpers import add_records, make_db, snapshot_settings

STAND_IN = Path(__file__).with_name("benchmark_stand_in.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _document(created: str, cut: float, snapshot_id: str | None = "20261101T000000Z") -> dict[str, Any]:
    gender = measured_category(cut, [cut - 10, cut + 10], "debiases", ss_before=63.0, ss_per_cut=0.13)
    gender["stereoset"] |= {"ss_ci_after": [58.0, 62.0], "lms_before": 88.0, "lms_after": 87.5}
    gender["train_records"] = 2000
    gender["crows_pairs"] = {"score_before": 58.0, "score_after": 55.0, "ci_after": [52.0, 58.0]}
    gender["perplexity"] = {"before": 20.1, "after": 20.4}
    return benchmark_document(created, {"gender": gender, "race": skipped_category()}, snapshot_id)


def vdata_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m vdata ...` (also checks that `python -m vdata` runs the CLI)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "vdata", *args], capture_output=True, text=True, timeout=120, env=env
    )
    # The error box wraps long lines at the terminal width: compare messages with spaces collapsed.
    done.stderr = " ".join(done.stderr.split())
    return done


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    threaded, server = start_server(new_db_url(request.param, request, tmp_path_factory), gate=False)
    try:
        yield server, tmp_path_factory.mktemp("bench")
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_benchmarks_before_any_import(served: tuple[Server, Path]) -> None:
    server, _ = served  # the module's first test: nothing imported yet
    assert server.http.get("/v1/benchmarks").json() == {"benchmarks": []}
    assert server.http.get("/v1/benchmarks/latest").status_code == 404
    badge = server.http.get("/v1/benchmarks/badge.svg")
    assert badge.status_code == 200 and badge.headers["content-type"].startswith("image/svg+xml")
    assert "no benchmark yet" in badge.text and "#9f9f9f" in badge.text
    assert "No benchmark yet." in server.http.get("/").text


def test_import_list_latest_and_badge(served: tuple[Server, Path]) -> None:
    server, tmp = served
    db = server.settings.db_url
    older, newer = tmp / "older.json", tmp / "newer.json"
    older.write_text(json.dumps(_document("2026-11-01T07:00:00Z", 21.0)), encoding="utf-8")
    newer_doc = _document("2026-11-30T07:00:00Z", 37.0, snapshot_id=None)
    newer.write_text(json.dumps(newer_doc), encoding="utf-8")
    # Imported newest first: the history is ordered by the runs' own dates, not by import.
    for path, extra in ((newer, ["--snapshot", "20261130T000000Z"]), (older, [])):
        done = vdata_cli("benchmarks", "import", str(path), "--db", db, *extra)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("benchmark ") and "stored from" in done.stdout

    runs = server.http.get("/v1/benchmarks").json()["benchmarks"]
    assert [r["created"] for r in runs] == ["2026-11-01T07:00:00Z", "2026-11-30T07:00:00Z"]
    assert [r["snapshot_id"] for r in runs] == ["20261101T000000Z", "20261130T000000Z"]
    assert runs[1]["categories"]["gender"]["bias_cut_pct"] == 37.0
    assert runs[1]["categories"]["race"]["status"] == "skipped"
    assert runs[1]["model"] == "SmolLM2-135M-Instruct" and runs[1]["records"] == 10_000

    latest = server.http.get("/v1/benchmarks/latest").json()
    assert latest["document"] == newer_doc  # stored whole, unchanged
    assert latest["snapshot_id"] == "20261130T000000Z"

    badge = server.http.get("/v1/benchmarks/badge.svg", params={"category": "gender"}).text
    assert "<title>StereoSet gender: bias cut 37%</title>" in badge and "#4c1" in badge
    race = server.http.get("/v1/benchmarks/badge.svg", params={"category": "race"}).text
    assert "StereoSet race: not measured" in race
    assert server.http.get("/v1/benchmarks/badge.svg", params={"category": "<script>"}).status_code == 422

    listed = vdata_cli("benchmarks", "list", "--db", db)
    assert listed.returncode == 0 and "gender 37%" in listed.stdout and "race skipped" in listed.stdout

    home = server.http.get("/").text
    assert 'class="chart bench"' in home
    assert "bias cut 37.0%" in home and "bias cut 21.0%" in home  # one point per run
    assert "63.0 → 58.2" in home and "debiases" in home
    assert "/v1/benchmarks/badge.svg?category=gender" in home


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid UTF-8 JSON"),
        ('["a list"]', "must be a JSON object"),
        ('{"schema": "vdata.benchmark/2"}', "is not a vdata.benchmark/1 document (schema:"),
        (
            json.dumps(
                {**_document("2026-11-30T07:00:00Z", 10.0), "categories": {"gender": {"status": "measured"}}}
            ),
            "category 'gender' is measured but has no stereoset figures",
        ),
        (json.dumps({**_document("yesterday", 10.0)}), "created: String should match pattern"),
    ],
)
def test_bad_benchmark_json_exits_2_and_stores_nothing(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "benchmark.json"
    path.write_text(content, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.sqlite3'}"
    done = vdata_cli("benchmarks", "import", str(path), "--db", db)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert vdata_cli("benchmarks", "list", "--db", db).stdout == ""


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = vdata_cli(
        "benchmarks", "import", str(tmp_path / "nope.json"), "--db", f"sqlite:///{tmp_path / 's.db'}"
    )
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_durations() -> None:
    assert parse_duration("7d") == 7 * 86400 and parse_duration("12h") == 43200
    assert parse_duration("1.5m") == 90 and parse_duration("30") == 30
    with pytest.raises(Exception, match="not understood"):
        parse_duration("weekly")


# ------------------------------------------------------------------------------ the schedule


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(ValueError):  # only the JSON lines are events
            self.events.append(json.loads(record.getMessage()))


@pytest.fixture
def snapshot_root(tmp_path: Path) -> Path:
    from vdata.server.snapshot import take_snapshot

    url = f"sqlite:///{tmp_path / 'snap.sqlite3'}"
    add_records(make_db(url), 12, "gender", "Snap")
    take_snapshot(snapshot_settings(url, tmp_path / "snaps"), now=datetime(2026, 11, 29, tzinfo=UTC))
    return tmp_path / "snaps"


def _scheduled(tmp_path: Path, root: Path, *extra: str) -> tuple[Any, Server, Captured]:
    captured = Captured()
    logging.getLogger("vdata.server").addHandler(captured)
    logging.getLogger("vdata.server").setLevel(logging.INFO)
    threaded, server = start_server(
        f"sqlite:///{tmp_path / 'server.sqlite3'}",
        gate=False,
        snapshots_dir=root,
        benchmark_every_s=0.3,
        benchmark_command=(sys.executable, str(STAND_IN), "{snapshot}", "{out}", *extra),
        benchmark_runs_dir=tmp_path / "runs",
    )
    return threaded, server, captured


def _wait_for(captured: Captured, event: str, n: int = 1, timeout_s: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in captured.events if e.get("event") == event]
        if len(found) >= n:
            return found
        assert time.monotonic() < deadline, f"no {event} event; saw {captured.events}"
        time.sleep(0.1)


def test_schedule_benchmarks_the_latest_snapshot_once(tmp_path: Path, snapshot_root: Path) -> None:
    (snapshot_id,) = [p.name for p in snapshot_root.iterdir()]
    threaded, server, captured = _scheduled(tmp_path, snapshot_root)
    try:
        imported = _wait_for(captured, "benchmark-imported")[0]
        assert imported["snapshot"] == snapshot_id
        _wait_for(captured, "benchmark-skipped", n=2)  # later ticks: already benchmarked
        runs = server.http.get("/v1/benchmarks").json()["benchmarks"]
        assert len(runs) == 1 and runs[0]["snapshot_id"] == snapshot_id
        latest = server.http.get("/v1/benchmarks/latest").json()["document"]
        assert latest == document(snapshot_root / snapshot_id)
        assert (
            (Path(imported["out"]) / "run.log")
            .read_text(encoding="utf-8")
            .startswith("stand-in: benchmarked")
        )
        assert "bias cut 38%" in server.http.get("/v1/benchmarks/badge.svg").text  # 37.5 rounds to even
    finally:
        server.close()
        threaded.__exit__(None, None, None)
        logging.getLogger("vdata.server").removeHandler(captured)


@pytest.mark.parametrize(
    ("flag", "check"),
    [
        ("--fail", lambda e: e["exit_status"] == 3 and "model training failed" in e["output_tail"]),
        ("--bad-output", lambda e: "is not a vdata.benchmark/1 document" in e["error"]),
    ],
)
def test_failed_runs_are_logged_retried_and_never_stop_the_server(
    tmp_path: Path, snapshot_root: Path, flag: str, check: Any
) -> None:
    threaded, server, captured = _scheduled(tmp_path, snapshot_root, flag)
    try:
        failures = _wait_for(captured, "benchmark-failed", n=2)  # tried again at the next tick
        assert all(check(e) for e in failures)
        assert server.http.get("/v1/benchmarks").json() == {"benchmarks": []}
        assert server.http.get("/v1/").status_code == 200
    finally:
        server.close()
        threaded.__exit__(None, None, None)
        logging.getLogger("vdata.server").removeHandler(captured)


def test_serve_refuses_benchmark_every_without_snapshots(tmp_path: Path) -> None:
    done = vdata_cli("serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--benchmark-every", "7d")
    assert done.returncode == 2 and "give --snapshots DIR too" in done.stderr
    done = vdata_cli("serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--auto-reject", "spam")
    assert done.returncode == 2 and "unknown rule 'spam'" in done.stderr
