"""`vdata serve` as a real process for tests: a free loopback port, start, wait until ready.

Imported by tests as `served` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    command: Sequence[str],
    db_url: str,
    env: Mapping[str, str],
    *,
    extra_args: Sequence[str] = (),
    log: Path | None = None,
    timeout_s: float = 60,
) -> tuple[subprocess.Popen[str], str]:
    """Start `COMMAND serve --db DB_URL --port PORT EXTRA_ARGS` and wait for /readyz; (process, base URL).

    Output goes to `log` (a file: a pipe nobody reads would fill up and block the server), or to pipes
    the caller reads when `log` is None.
    """
    port = free_port()
    out: IO[Any] | int = log.open("w") if log is not None else subprocess.PIPE
    process = subprocess.Popen(
        [*command, "serve", "--db", db_url, "--port", str(port), *extra_args],
        env=dict(env),
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            said = log.read_text() if log is not None else (process.stderr.read() if process.stderr else "")
            raise AssertionError(f"vdata serve did not become ready:\n{said}")
        time.sleep(0.2)
