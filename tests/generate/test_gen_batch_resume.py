"""kill -9 while `vdata gen` polls a batch job, rerun: the rerun picks the job up instead of submitting again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generate.batch_stub import BatchStub, BatchStubConfig
from vdata.core.io import read_records
from vdata.generate.batch.journal import batch_journal_path


def vdata_gen(out: Path, options: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vdata.cli", "gen", str(out), str(options), "-k", "sk-test", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_kill_mid_poll_then_rerun_reuses_the_job(write_options, tmp_path: Path, provider: str) -> None:
    # Each state lasts 30 polls, 0.05 s apart: the job is in progress for seconds, long enough to kill the run.
    server = BatchStub(BatchStubConfig(polls_per_state=30)).start_in_thread()
    try:
        model = "stub" if provider == "openai" else "gemini-2.0-flash"
        options = write_options(
            tmp_path / "o.json",
            provider=provider,
            model=model,
            base_url=server.base_url if provider == "openai" else server.gemini_url,
            strategy="simple",
            count=20,
            per_request=2,
            batch=True,
            batch_options={"poll_seconds": 0.05},
            prices={model: {"input_per_mtok": 1.0, "output_per_mtok": 1.0}},
        )
        env = {**os.environ, "VDATA_CACHE_DIR": str(tmp_path / "cache"), "VDATA_CONTRIBUTE": "never"}
        out = tmp_path / "out.jsonl"
        jobs_file = batch_journal_path(out)
        proc = vdata_gen(out, options, env)
        deadline = time.monotonic() + 60
        while server.polls < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        journalled = json.loads(jobs_file.read_text(encoding="utf-8"))["jobs"]
        assert [j["id"] for j in journalled] == list(server.jobs) and not any(j["done"] for j in journalled)
        assert sum(server.creations.values()) == 1 and not out.exists()

        rerun = vdata_gen(out, options, env)
        assert rerun.wait(timeout=120) == 0, rerun.stderr.read().decode() if rerun.stderr else ""
        assert sum(server.creations.values()) == 1  # picked up, not paid for again
        assert (
            len(server.files) <= 2 and server.online_requests == 0
        )  # OpenAI: the input and output files only
        records = read_records(out)
        assert len(records) == 20 == len({r.id for r in records})
        assert not jobs_file.exists()
    finally:
        server.stop()
