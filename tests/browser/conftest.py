"""Browser tests: pytest-playwright driving Debian's Chromium against a real `vdata serve` on loopback.

Playwright's own browser download needs the internet, so the tests use the system Chromium
(`scripts/install-chromium.sh`) and skip when it is absent.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from served import start_serve

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


@pytest.fixture(scope="session")
def live_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VDATA_HOME of the live server; its database is `live_db_url`."""
    return tmp_path_factory.mktemp("browser-server")


@pytest.fixture(scope="session")
def live_db_url(live_home: Path) -> str:
    return f"sqlite:///{live_home / 'vdata.db'}"


@pytest.fixture(scope="session")
def live_server(live_home: Path, live_db_url: str) -> Iterator[str]:
    """`vdata serve` on a fresh SQLite database, as a user would start it; yields its base URL."""
    home = live_home
    # Counts recomputed on every page (no cache), so that pages show the data a test just seeded.
    env = os.environ | {
        "VDATA_HOME": str(home),
        "VDATA_MODERATOR_TOKEN": "browser-test-token",
        "VDATA_COUNT_CACHE_S": "0",
    }
    process, url = start_serve([sys.executable, "-m", "vdata.cli"], live_db_url, env, log=home / "serve.log")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
