"""`vdata pull OUT_DIR --snapshot [latest|ID]`: download a snapshot's files, resumably, verified.

Files go into `OUT_DIR/.<id>.partial/` (a fixed name, so a later run resumes there); each file is
fetched into `<path>.part`, continued with an HTTP Range request (If-Range: the file's ETag) after an
interrupted transfer, and checked against the SHA-256 in the manifest before it takes its name. Only
when every file is verified is the folder renamed to `OUT_DIR/<id>`. A shard that an earlier snapshot
in OUT_DIR already holds (same path, same SHA-256) is hard-linked instead of downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.core.io import atomic_path
from vdata.core.progress import ProgressFactory, ProgressTask, no_progress
from vdata.core.retry import backoff_delay
from vdata.server.client import ServerUnreachable
from vdata.server.snapshot import MANIFEST, SNAPSHOT_ID, list_snapshots

MAX_ATTEMPTS = 5
# Transfer errors after which the download resumes where it stopped.
TRANSIENT = (httpx.TransportError,)


class CorruptDownload(UserError):
    """A downloaded file does not match the SHA-256 its manifest gives: it is refused and removed."""


@dataclass
class PulledSnapshot:
    snapshot_id: str
    folder: Path
    files: int
    downloaded_bytes: int
    linked: int
    already_here: bool = False


def _get_json(client: httpx.Client, url: str) -> Any:
    return json.loads(_get_bytes(client, url))


def _get_bytes(client: httpx.Client, url: str) -> bytes:
    try:
        response = client.get(url)
    except httpx.TransportError as e:
        raise ServerUnreachable(f"cannot reach the vdata server at {client.base_url}: {e}") from e
    if response.status_code != 200:
        raise UserError(f"{url}: the server answered {response.status_code}: {response.text[:300]}")
    return response.content


def resolve_snapshot(client: httpx.Client, which: str) -> str:
    """The id for `latest` or an id the server lists; UserError naming the ones it has otherwise."""
    listing = _get_json(client, "/v1/snapshots")
    ids = [s["id"] for s in listing["snapshots"]]
    if not ids:
        raise UserError("the server has no snapshots yet; its operator makes them with vdata snapshot")
    if which == "latest":
        return str(listing["latest"])
    if which not in ids:
        raise UserError(f"the server has no snapshot {which!r}; it has {', '.join(ids[:10])} (or use latest)")
    return which


def _local_copies(out_dir: Path, snapshot_id: str) -> dict[tuple[str, str], Path]:
    """(path, sha256) -> file, for the shards of the complete snapshots already in out_dir."""
    found: dict[tuple[str, str], Path] = {}
    for other in list_snapshots(out_dir):
        if other == snapshot_id:
            continue
        manifest = json.loads((out_dir / other / MANIFEST).read_text(encoding="utf-8"))
        for entry in manifest["files"]:
            found[(entry["path"], entry["sha256"])] = out_dir / other / entry["path"]
    return found


def _download(
    client: httpx.Client,
    url: str,
    target: Path,
    entry: dict[str, Any],
    task: ProgressTask,
    sleep: Callable[[float], None],
) -> int:
    """Fetch `url` into `target` via `target.part`, resuming after transfer errors; verify; return bytes
    fetched. A `.part` left by an earlier run is continued too."""
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    expected, etag = int(entry["bytes"]), f'"{entry["sha256"]}"'
    if part.exists() and part.stat().st_size > expected:
        part.unlink()
    if part.exists():
        task.advance(part.stat().st_size)
    fetched = 0
    for attempt in range(MAX_ATTEMPTS):
        have = part.stat().st_size if part.exists() else 0
        if have == expected:
            break
        headers = {"Range": f"bytes={have}-", "If-Range": etag} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code not in (200, 206):
                    response.read()
                    raise UserError(
                        f"{url}: the server answered {response.status_code}: {response.text[:300]}"
                    )
                mode = "ab" if response.status_code == 206 else "wb"
                if mode == "wb" and have:
                    task.advance(-have)  # the server sent the whole file again
                with part.open(mode) as f:
                    for chunk in response.iter_bytes():  # as it arrives: a cut keeps all it got
                        f.write(chunk)
                        fetched += len(chunk)
                        task.advance(len(chunk))
            if part.stat().st_size >= expected:
                break
        except TRANSIENT:
            if attempt == MAX_ATTEMPTS - 1:
                raise ServerUnreachable(
                    f"the download of {url} kept failing; run the same vdata pull again to resume it"
                ) from None
            sleep(backoff_delay(attempt, None))
    size = part.stat().st_size if part.exists() else 0
    digest = sha256_file(part) if size == expected else None
    if digest != entry["sha256"]:
        part.unlink(missing_ok=True)
        got = f"sha256 {digest}" if digest else f"{size} bytes instead of {expected}"
        raise CorruptDownload(
            f"{entry['path']}: the download does not match the manifest (expected sha256 {entry['sha256']}, "
            f"got {got}); the file was refused and removed. Run the same vdata pull again to fetch it anew."
        )
    os.replace(part, target)
    return fetched


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def pull_snapshot(
    server: str,
    out_dir: Path,
    which: str = "latest",
    *,
    progress: ProgressFactory = no_progress,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = 60.0,
) -> PulledSnapshot:
    """Download snapshot `which` (`latest` or an id) from `server` into `out_dir/<id>`, every file verified."""
    if which != "latest" and not SNAPSHOT_ID.match(which):
        raise UserError(f"--snapshot {which!r}: give latest or a snapshot id such as 20260101T000000Z")
    with httpx.Client(base_url=server, timeout=timeout_s) as client:
        snapshot_id = resolve_snapshot(client, which)
        final = out_dir / snapshot_id
        if (final / MANIFEST).is_file():
            manifest = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
            return PulledSnapshot(snapshot_id, final, len(manifest["files"]), 0, 0, already_here=True)
        base = f"/v1/snapshots/{snapshot_id}"
        manifest_bytes = _get_bytes(client, f"{base}/{MANIFEST}")
        manifest = json.loads(manifest_bytes)
        if not isinstance(manifest, dict) or manifest.get("snapshot_id") != snapshot_id:
            raise CorruptDownload(f"{base}/{MANIFEST} is not the manifest of snapshot {snapshot_id}")
        staging = out_dir / f".{snapshot_id}.partial"
        staging.mkdir(parents=True, exist_ok=True)
        local = _local_copies(out_dir, snapshot_id)
        entries = [*manifest["files"], *manifest.get("documents", ())]
        todo: list[dict[str, Any]] = []
        linked = 0
        for entry in entries:
            target = staging / entry["path"]
            source = local.get((entry["path"], entry["sha256"]))
            if target.exists():
                continue  # verified by an earlier run before it took its name
            if source is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    os.link(source, target)
                    linked += 1
                    continue
            todo.append(entry)
        fetched = 0
        refused: list[str] = []
        with progress(f"snapshot {snapshot_id}", sum(int(e["bytes"]) for e in todo), "B") as task:
            for entry in todo:
                try:
                    fetched += _download(
                        client, f"{base}/{entry['path']}", staging / entry["path"], entry, task, sleep
                    )
                except CorruptDownload as e:
                    refused.append(str(e))  # the other files still come, so a rerun fetches only these
        if refused:
            raise CorruptDownload("\n".join(refused))
    write_bytes_atomic(staging / MANIFEST, manifest_bytes)
    os.rename(staging, final)
    return PulledSnapshot(snapshot_id, final, len(manifest["files"]), fetched, linked)
