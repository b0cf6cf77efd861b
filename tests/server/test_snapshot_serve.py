"""GET /v1/snapshots (listing, files with Range and ETag) and `vdata pull --snapshot` against a real server
on loopback, through a loopback proxy that cuts a transfer short or flips a byte mid-download."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.server.routers import snapshots as snapshots_router
from vdata.server.serve import ThreadedServer
from vdata.server.snapshot import take_snapshot
from vdata.server.snapshot_client import CorruptDownload, pull_snapshot

from .conftest import server_settings
from .snapshot_helpers import add_records, make_db, set_status, snapshot_settings

T0 = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two snapshots: the second adds a category and replaces nothing else."""
    base = tmp_path_factory.mktemp("snapdata")
    url = f"sqlite:///{base / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 1500, "gender", "Served", moderated_at=T0)
    add_records(engine, 300, "race", "Served", moderated_at=T0)
    take_snapshot(snapshot_settings(url, base / "snaps"), now=datetime(2026, 1, 2, tzinfo=UTC))
    later = add_records(engine, 200, "age", "Later", status="pending")
    set_status(engine, later, "approved", "2026-01-02T06:00:00Z")
    engine.dispose()
    take_snapshot(snapshot_settings(url, base / "snaps"), now=datetime(2026, 1, 3, tzinfo=UTC))
    return base / "snaps"


@pytest.fixture(scope="module")
def server(snapshot_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('serverdb') / 'server.sqlite3'}"
    threaded = ThreadedServer(server_settings(db_url, snapshots_dir=snapshot_root))
    # What app.py's routes list gains when this branch is merged.
    threaded.server.config.app.router.routes.extend(snapshots_router.router.routes)
    with threaded:
        yield threaded.url


def test_listing_and_files_with_etag_and_ranges(server: str, snapshot_root: Path) -> None:
    with httpx.Client(base_url=server) as http:
        listing = http.get("/v1/snapshots").json()
        assert listing["latest"] == "20260103T000000Z"
        assert [s["id"] for s in listing["snapshots"]] == ["20260103T000000Z", "20260102T000000Z"]
        assert listing["snapshots"][0]["rows"] == 2000 and listing["snapshots"][0]["configs"] == [
            "age",
            "gender",
            "race",
        ]
        manifest = http.get(listing["snapshots"][0]["manifest"]).json()
        entry = max(manifest["files"], key=lambda e: e["bytes"])
        url = f"/v1/snapshots/{manifest['snapshot_id']}/{entry['path']}"
        whole = http.get(url)
        assert whole.status_code == 200 and whole.headers["etag"] == f'"{entry["sha256"]}"'
        assert whole.headers["accept-ranges"] == "bytes" and "immutable" in whole.headers["cache-control"]
        assert whole.content == (snapshot_root / manifest["snapshot_id"] / entry["path"]).read_bytes()
        tail = http.get(url, headers={"Range": "bytes=1000-"})
        assert tail.status_code == 206 and tail.content == whole.content[1000:]
        assert tail.headers["content-range"] == f"bytes 1000-{entry['bytes'] - 1}/{entry['bytes']}"
        # If-Range with a stale ETag: the whole file, not a range of something else.
        stale = http.get(url, headers={"Range": "bytes=1000-", "If-Range": '"0000"'})
        assert stale.status_code == 200 and stale.content == whole.content
        assert http.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
        card = http.get(f"/v1/snapshots/{manifest['snapshot_id']}/README.md")
        assert card.status_code == 200 and card.text.startswith("---\n")

        # Only what a manifest lists is served.
        for bad in (
            "/v1/snapshots/20260103T000000Z/../../etc/passwd",
            "/v1/snapshots/20260103T000000Z/data/gender/nothing.parquet",
            "/v1/snapshots/20260103T000000Z/%2e%2e/db.sqlite3",
            "/v1/snapshots/..%2fsnaps/manifest.json",
            "/v1/snapshots/20991231T000000Z/manifest.json",
        ):
            assert http.get(bad).status_code == 404, bad


def test_server_without_snapshots_says_how_to_enable(tmp_path: Path) -> None:
    threaded = ThreadedServer(server_settings(f"sqlite:///{tmp_path / 's.sqlite3'}"))
    threaded.server.config.app.router.routes.extend(snapshots_router.router.routes)
    with threaded:
        response = httpx.get(f"{threaded.url}/v1/snapshots")
    assert response.status_code == 404 and "--snapshots" in response.json()["detail"]


class ManglingProxy:
    """A loopback HTTP proxy in front of the server. For each path in `truncate`, the first response
    stops half-way (the connection drops); for each path in `flip`, one byte in the middle is changed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.truncate: set[str] = set()
        self.flip: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                proxy.requests.append((self.path, self.headers.get("Range")))
                forwarded = {k: v for k, v in self.headers.items() if k.lower() in {"range", "if-range"}}
                response = httpx.get(proxy.upstream + self.path, headers=forwarded)
                body = response.content
                path = self.path.split("?")[0]
                if path in proxy.flip:
                    proxy.flip.discard(path)
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in proxy.truncate:
                    proxy.truncate.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server: str) -> Iterator[ManglingProxy]:
    mangler = ManglingProxy(server)
    yield mangler
    mangler.close()


def shard_urls(server: str, snapshot_id: str) -> dict[str, dict]:
    manifest = httpx.get(f"{server}/v1/snapshots/{snapshot_id}/manifest.json").json()
    return {f"/v1/snapshots/{snapshot_id}/{e['path']}": e for e in manifest["files"]}


def test_pull_resumes_a_cut_transfer_and_verifies(proxy: ManglingProxy, server: str, tmp_path: Path) -> None:
    shards = shard_urls(server, "20260102T000000Z")
    biggest = max(shards, key=lambda u: shards[u]["bytes"])
    proxy.truncate.add(biggest)
    pulled = pull_snapshot(proxy.url, tmp_path / "out", "20260102T000000Z", sleep=lambda s: None)
    assert pulled.folder == tmp_path / "out" / "20260102T000000Z" and pulled.linked == 0
    ranges = [r for path, r in proxy.requests if path == biggest]
    # The second request continued where the cut one stopped, instead of starting again.
    assert ranges == [None, f"bytes={shards[biggest]['bytes'] // 2}-"]
    for url, entry in shards.items():
        assert sha256_file(pulled.folder / entry["path"]) == entry["sha256"], url
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["20260102T000000Z"]

    # The next snapshot: the unchanged shards are linked from the first one, only the new one travels.
    proxy.requests.clear()
    newer = pull_snapshot(proxy.url, tmp_path / "out", "latest", sleep=lambda s: None)
    assert newer.snapshot_id == "20260103T000000Z" and newer.linked == 2
    fetched = [p for p, _ in proxy.requests if "/data/" in p]
    assert fetched == ["/v1/snapshots/20260103T000000Z/data/age/20260103T000000Z-00000.parquet"]
    again = pull_snapshot(proxy.url, tmp_path / "out", "latest")
    assert again.already_here


def test_pull_refuses_a_corrupt_file_and_resumes_after(
    proxy: ManglingProxy, server: str, tmp_path: Path
) -> None:
    shards = shard_urls(server, "20260103T000000Z")
    victim = max(shards, key=lambda u: shards[u]["bytes"])
    proxy.flip.add(victim)
    out = tmp_path / "out"
    with pytest.raises(CorruptDownload, match=r"does not match the manifest .* refused and removed"):
        pull_snapshot(proxy.url, out, "latest", sleep=lambda s: None)
    # Nothing half-written under a snapshot's name; the corrupt file is gone from the partial folder.
    assert [p.name for p in out.iterdir()] == [".20260103T000000Z.partial"]
    assert not (out / ".20260103T000000Z.partial" / shards[victim]["path"]).exists()
    # Run again: the files already verified stay, only the refused one is fetched anew.
    proxy.requests.clear()
    pulled = pull_snapshot(proxy.url, out, "latest", sleep=lambda s: None)
    assert [p for p, _ in proxy.requests if "/data/" in p] == [victim]
    assert all(sha256_file(pulled.folder / e["path"]) == e["sha256"] for e in shards.values())


def test_pull_resumes_a_part_file_left_by_a_killed_run(server: str, tmp_path: Path) -> None:
    shards = shard_urls(server, "20260103T000000Z")
    url, entry = max(shards.items(), key=lambda kv: kv[1]["bytes"])
    whole = httpx.get(server + url).content
    part = tmp_path / "out" / ".20260103T000000Z.partial" / (entry["path"] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[: len(whole) // 3])
    pulled = pull_snapshot(server, tmp_path / "out", "latest")
    manifest = httpx.get(f"{server}/v1/snapshots/20260103T000000Z/manifest.json").json()
    everything = sum(e["bytes"] for e in (*manifest["files"], *manifest["documents"]))
    assert pulled.downloaded_bytes == everything - len(whole) // 3
    assert sha256_file(pulled.folder / entry["path"]) == entry["sha256"]


def test_pull_bad_input_is_a_clear_error(server: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no snapshot '20200101T000000Z'; it has 20260103T000000Z"):
        pull_snapshot(server, tmp_path / "o", "20200101T000000Z")
    with pytest.raises(UserError, match="give latest or a snapshot id"):
        pull_snapshot(server, tmp_path / "o", "yesterday")


def test_vdata_pull_snapshot_cli(server: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "pull",
            str(tmp_path / "o"),
            "--snapshot",
            "latest",
            "--server",
            server,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert "snapshot 20260103T000000Z: 3 files" in done.stdout and "all sha256 verified" in done.stdout
    manifest = json.loads((tmp_path / "o" / "20260103T000000Z" / "manifest.json").read_text())
    assert manifest["rows"] == 2000
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "pull",
            str(tmp_path / "p"),
            "--snapshot",
            "latest",
            "-c",
            "--server",
            server,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "takes no format or filter" in " ".join(done.stderr.split())
