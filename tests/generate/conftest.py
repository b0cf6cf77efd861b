"""Fixtures for the generate tests: a loopback OpenAI-compatible server and an isolated response cache."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generate.stub_server import StubConfig, StubServer


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    """Factory: stub(latency_s=..., faults=[...]) starts a loopback server; all are stopped afterwards."""
    started: list[StubServer] = []

    def start(**kwargs: object) -> StubServer:
        server = StubServer(StubConfig(**kwargs)).start_in_thread()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gen_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache dir, so response-cache hits come only from this test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("VDATA_CACHE_DIR", str(d))
    return d


@pytest.fixture
def write_options() -> Callable[..., Path]:
    """write_options(path, **options) writes an options file and returns its path."""

    def write(path: Path, **options: object) -> Path:
        path.write_text(json.dumps(options), encoding="utf-8")
        return path

    return write
