"""kill -9 in the middle of `vdata gen`, rerun: the final file has every record exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vdata.core.io import read_records
from vdata.generate.engine import journal_path


def vdata_gen(out: Path, options: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vdata.cli", "gen", str(out), str(options), "-k", "sk-test", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def journal_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError, KeyError):  # a torn last line: dropped on reopen
            ids.append(json.loads(line)["id"])
    return ids


def test_kill_9_mid_run_then_rerun_loses_and_duplicates_nothing(stub, write_options, tmp_path: Path) -> None:
    server = stub(latency_s=0.1)
    options = write_options(
        tmp_path / "o.json",
        provider="openai",
        model="stub",
        base_url=server.base_url,
        strategy="simple",
        categories=["gender", "religion"],
        count=240,
        per_request=2,
        concurrency=8,
    )
    env = {**os.environ, "VDATA_CACHE_DIR": str(tmp_path / "cache"), "VDATA_CONTRIBUTE": "never"}
    out = tmp_path / "out.jsonl"
    journal = journal_path(out)
    seen_before_kill: list[str] = []
    for threshold in (20, 90, 160):
        proc = vdata_gen(out, options, env)
        deadline = time.monotonic() + 60
        while len(journal_ids(journal)) < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()  # the final file appears only when the run ends
        seen_before_kill = journal_ids(journal)
        assert len(seen_before_kill) == len(set(seen_before_kill)) >= threshold
    proc = vdata_gen(out, options, env)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
    paid_with_kills = server.requests
    final = read_records(out)
    ids = [r.id for r in final]
    assert len(ids) == 240 == len(set(ids))
    assert set(seen_before_kill) <= set(ids)
    assert not journal.exists()

    # The same command without interruptions (fresh cache) produces the same records in the same order,
    # and the interrupted runs paid for at most the requests in flight at each kill on top of that.
    env2 = {**env, "VDATA_CACHE_DIR": str(tmp_path / "cache2")}
    before = server.requests
    clean = vdata_gen(tmp_path / "clean.jsonl", options, env2)
    assert clean.wait(timeout=120) == 0
    clean_requests = server.requests - before
    assert [r.id for r in read_records(tmp_path / "clean.jsonl")] == ids
    # Each kill can waste the requests in flight (concurrency 8), and a run that reaches `count` still
    # awaits its in-flight requests, so the two final runs may overshoot differently by up to 8 more.
    concurrency, kills = 8, 3
    assert paid_with_kills <= clean_requests + (kills + 1) * concurrency
