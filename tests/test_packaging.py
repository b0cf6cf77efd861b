"""Packaging: `pip install vdata[server]` runs the dataset server without torch or transformers.

Builds the project as a wheel into a fresh virtual environment (package data such as the migrations
must be in the wheel), then starts `vdata serve` from that environment and round-trips a record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from served import start_serve

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("server-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, f"{ROOT}[server]"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"pip install vdata[server] failed:\n{result.stdout}\n{result.stderr}")
    return venv


def test_server_extra_has_no_ml_dependencies(server_venv: Path) -> None:
    python = str(server_venv / "bin" / "python")
    for heavy in ("torch", "transformers", "peft", "sentence_transformers"):
        probe = subprocess.run([python, "-c", f"import {heavy}"], capture_output=True, text=True)
        assert probe.returncode != 0, f"{heavy} was installed by vdata[server]"
    # The CLI itself works with only the server extra: every stage registers, heavy imports stay lazy.
    helped = subprocess.run([str(server_venv / "bin" / "vdata"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    for command in ("serve", "push", "pull", "gen", "audit", "eval", "debias", "run"):
        assert command in helped.stdout


def test_server_extra_serves_and_stores(server_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VDATA_", "PYTHON"))} | {
        "VDATA_HOME": str(tmp_path / "home"),
        "VDATA_MODERATOR_TOKEN": "secret-token",
    }
    proc, base = start_serve(
        [str(server_venv / "bin" / "vdata")],
        f"sqlite:///{tmp_path / 'vdata.db'}",
        env,
        log=tmp_path / "serve.log",
    )
    try:
        record = {"text": "The nurse fixed the engine himself.", "target": "nurse", "category": "gender"}
        put = httpx.put(f"{base}/v1/records", json=[record], timeout=10)
        assert put.status_code == 200, put.text
        (rid,) = put.json()["accepted"]
        approve = httpx.put(
            f"{base}/v1/records/{rid}/status",
            json={"status": "approved"},
            headers={"Authorization": "Bearer secret-token"},
            timeout=10,
        )
        assert approve.status_code == 200, approve.text
        got = httpx.get(f"{base}/v1/records", timeout=10)
        assert got.status_code == 200
        assert [r["text"] for r in got.json()["records"]] == [record["text"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_base_install_is_the_cli_and_core(tmp_path: Path) -> None:
    """`pip install vdata`: every command is listed and push/pull work; no server, API or ML library."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    python = str(venv / "bin" / "python")
    for absent in ("fastapi", "sqlalchemy", "openai", "torch", "transformers"):
        assert subprocess.run([python, "-c", f"import {absent}"], capture_output=True).returncode != 0, absent
    helped = subprocess.run([str(venv / "bin" / "vdata"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    for command in ("gen", "audit", "eval", "debias", "serve", "push", "pull", "run"):
        assert command in helped.stdout
    pulled = subprocess.run(
        [str(venv / "bin" / "vdata"), "pull", str(tmp_path / "out.jsonl"), "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 2 and "cannot reach the vdata server" in pulled.stderr, pulled.stderr
