"""`vdata push` and `vdata pull` end to end against a real uvicorn server on loopback (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.records import Record
from vdata.server.client import ServerUnreachable, pull, push_records, validate_rows

from .conftest import SEED_APPROVED, Server, sample_records, start_server

VDATA = [sys.executable, "-m", "vdata.cli"]


def run_vdata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VDATA, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_push_reports_accepted_duplicates_and_rejected(fresh_server: Server, tmp_path: Path) -> None:
    good = sample_records(5, "Pushed")
    rows = [
        *good,
        good[0],  # duplicate inside the file
        {"text": "   ", "category": "gender"},  # blank text: rejected locally
        {"text": "Unknown category here.", "category": "astrology"},  # rejected by the server's rules
        {"text": "Unknown strategy here.", "strategy": "bogus"},  # rejected by the server's rules
    ]
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    done = run_vdata("push", str(path), "--server", fresh_server.url, "--contributor", "alice")
    assert done.returncode == 0, done.stderr
    assert "accepted 5" in done.stdout and "duplicates 1" in done.stdout and "rejected 3" in done.stdout
    assert "mine.jsonl:7" in done.stdout  # local rejections name file and line
    assert "category" in done.stdout and "strategy" in done.stdout  # server reasons are shown
    assert fresh_server.count("pending") == 5 and fresh_server.count() == 5

    again = run_vdata("push", str(path), "--server", fresh_server.url)
    assert again.returncode == 0, again.stderr
    assert "accepted 0" in again.stdout and "duplicates 6" in again.stdout
    assert fresh_server.count() == 5


def test_push_in_small_batches_is_idempotent(fresh_server: Server) -> None:
    records = [Record(**r) for r in sample_records(23, "Batched")]
    first = push_records(records, fresh_server.url, batch_size=5, contributor="bob")
    assert len(first.accepted) == 23 and not first.duplicates and not first.rejected
    second = push_records(records, fresh_server.url, batch_size=7)
    assert not second.accepted and len(second.duplicates) == 23
    assert fresh_server.count("pending") == 23


def test_push_to_unreachable_server_exits_2_with_reason(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", sample_records(2))
    with pytest.raises(ServerUnreachable, match="cannot reach"):
        push_records(validate_rows(path)[0], closed_port_url(), sleep=lambda s: None)
    done = run_vdata("push", str(path), "--server", closed_port_url())
    assert done.returncode == 2
    assert "cannot reach the vdata server" in done.stderr


def test_push_without_server_names_the_three_ways(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", sample_records(1))
    env = {"VDATA_SERVER": "", "VDATA_CONFIG": str(tmp_path / "none.toml")}
    done = run_vdata("push", str(path), env=env)
    assert done.returncode == 2
    assert "--server" in done.stderr and "VDATA_SERVER" in done.stderr


def test_pull_formats_filters_and_pagination(seeded_server: Server, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    done = run_vdata("pull", str(out), "-j", "--server", seeded_server.url)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == SEED_APPROVED
    assert not any(r["text"].startswith("Pending") for r in rows)  # pending records are not public
    assert len({r["id"] for r in rows}) == SEED_APPROVED

    # Small pages: every record exactly once, across many keyset pages.
    paged = pull(tmp_path / "paged.jsonl", seeded_server.url, page_size=7)
    assert paged.rows == SEED_APPROVED
    assert (tmp_path / "paged.jsonl").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")

    csv_out = tmp_path / "race.csv"
    done = run_vdata("pull", str(csv_out), "-c", "--category", "race", "--server", seeded_server.url)
    assert done.returncode == 0, done.stderr
    with csv_out.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == SEED_APPROVED // 2 and {r["category"] for r in table} == {"race"}
    assert "contributor" in table[0]

    text_out = tmp_path / "texts.txt"
    done = run_vdata("pull", str(text_out), "-t", "--server", seeded_server.url)
    assert done.returncode == 0, done.stderr
    lines = text_out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == SEED_APPROVED and all(line.startswith("Approved ") for line in lines)


def test_pull_sql_inline_and_from_editor(seeded_server: Server, tmp_path: Path) -> None:
    out = tmp_path / "counts.csv"
    sql = "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY category"
    done = run_vdata("pull", str(out), "-c", "--server", seeded_server.url, "--sql", sql)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").splitlines() == ["category,n", "gender,20", "race,20"]

    # `--sql` with no value opens $EDITOR on a temp file; this "editor" writes the query into it.
    editor_script = tmp_path / "editor.py"
    editor_script.write_text(
        "import sys\nopen(sys.argv[1], 'w').write('-- a comment\\nSELECT COUNT(*) AS n FROM records')\n",
        encoding="utf-8",
    )
    out2 = tmp_path / "n.jsonl"
    done = run_vdata(
        "pull", str(out2), "--server", seeded_server.url, "--sql",
        env={"EDITOR": f"{sys.executable} {editor_script}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out2.read_text(encoding="utf-8")) == {"n": SEED_APPROVED}


def test_pull_refused_sql_leaves_out_untouched(seeded_server: Server, tmp_path: Path) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("old contents\n", encoding="utf-8")
    done = run_vdata("pull", str(out), "--server", seeded_server.url, "--sql", "DELETE FROM records")
    assert done.returncode == 2
    assert "refused" in done.stderr
    assert out.read_text(encoding="utf-8") == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_pull_failure_mid_way_leaves_no_truncated_out(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from .conftest import new_db_url

    threaded, server = start_server(new_db_url(backend, request, tmp_path_factory))
    try:
        response = server.http.put("/v1/records", json=sample_records(20, "Midway"))
        for record_id in response.json()["accepted"]:
            assert server.moderate(record_id).status_code == 200
        out = tmp_path / "out.jsonl"
        out.write_text("previous pull\n", encoding="utf-8")
        pages: list[int] = []

        def stop_server_after_first_page(n: int) -> None:
            pages.append(n)
            if len(pages) == 1:
                threaded.__exit__(None, None, None)  # the server goes away between pages

        with pytest.raises(UserError):
            pull(out, server.url, page_size=5, on_page=stop_server_after_first_page, sleep=lambda s: None)
        assert pages == [5]
        assert out.read_text(encoding="utf-8") == "previous pull\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temp file left behind
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_push_waits_out_the_rate_limit(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A server allowing one PUT per second: push honours 429 + Retry-After and still sends everything."""
    from .conftest import new_db_url

    threaded, server = start_server(
        new_db_url("sqlite", request, tmp_path_factory), put_rate=1.0, put_burst=1
    )
    try:
        waits: list[float] = []

        def recording_sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        report = push_records(
            [Record(**r) for r in sample_records(9, "Throttled")],
            server.url,
            batch_size=3,
            sleep=recording_sleep,
        )
        assert len(report.accepted) == 9 and not report.rejected
        assert waits and all(w >= 1 for w in waits)  # the server's Retry-After, not a guess
        assert server.count("pending") == 9
    finally:
        server.close()
        threaded.__exit__(None, None, None)
