"""Browser tests: pytest-playwright driving Debian's Chromium against a real `vdata serve` on loopback.

Playwright's own browser download needs the internet, so the tests use the system Chromium
(`scripts/install-chromium.sh`) and skip when it is absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without these, Chromium keeps trying to reach Google's services, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM is None:
        skip = pytest.mark.skip(reason="Chromium is not installed (bash scripts/install-chromium.sh)")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vdata serve` on a fresh SQLite database, as a user would start it; yields its base URL."""
    home = tmp_path_factory.mktemp("browser-server")
    port = _free_port()
    # Counts recomputed on every page (no cache), so that pages show the data a test just seeded.
    env = os.environ | {
        "VDATA_HOME": str(home),
        "VDATA_MODERATOR_TOKEN": "browser-test-token",
        "VDATA_COUNT_CACHE_S": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "serve",
            "--db",
            f"sqlite:///{home / 'vdata.db'}",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vdata serve did not start:\n{proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
