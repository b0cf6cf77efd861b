"""GET /v1/snapshots: the dataset as files (see snapshot.py), served so that downloads can resume.

Only files a snapshot's manifest lists are served (the manifest is the allow-list: no path from a request
ever reaches the file system unchecked). Snapshot files never change once written, so the ETag of a
file is its SHA-256 from the manifest, and range requests (Starlette's FileResponse) let a client resume.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from vdata.core.fingerprint import sha256_file
from vdata.server.responses import json_response
from vdata.server.snapshot import MANIFEST, SNAPSHOT_ID, cached_manifest, list_snapshots
from vdata.server.state import State

router = APIRouter()
IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown",
}


def _root(state: Any) -> Path:
    root: Path | None = state.settings.snapshots_dir
    if root is None:
        raise HTTPException(
            404,
            "this server publishes no snapshots; its operator can start it with vdata serve --snapshots DIR",
        )
    return root


@functools.lru_cache(maxsize=64)
def _manifest_etag(root: Path, snapshot_id: str) -> str:
    return f'"{sha256_file(root / snapshot_id / MANIFEST)}"'


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    snapshot_id = manifest["snapshot_id"]
    return {
        "id": snapshot_id,
        "created": manifest["created"],
        "watermark": manifest["watermark"],
        "previous": manifest["previous"],
        "rows": manifest["rows"],
        "bytes": manifest["bytes"],
        "files": len(manifest["files"]),
        "configs": sorted(manifest["configs"]),
        "manifest": f"/v1/snapshots/{snapshot_id}/{MANIFEST}",
    }


@router.get("/v1/snapshots", summary="Snapshots of the dataset as Parquet files, newest first")
def snapshots(state: State) -> Response:
    root = _root(state)
    ids = list_snapshots(root)
    return json_response(
        {
            "latest": ids[-1] if ids else None,
            "snapshots": [_summary(cached_manifest(root, i)) for i in reversed(ids)],
        }
    )


@router.get(
    "/v1/snapshots/{snapshot_id}/{file:path}",
    summary="One file of a snapshot (manifest.json, README.md, croissant.json or a data/... shard); "
    "supports Range and If-None-Match",
)
def snapshot_file(state: State, request: Request, snapshot_id: str, file: str) -> Response:
    root = _root(state)
    if not SNAPSHOT_ID.match(snapshot_id) or not (root / snapshot_id / MANIFEST).is_file():
        raise HTTPException(404, f"no snapshot {snapshot_id!r}; list them at /v1/snapshots")
    manifest = cached_manifest(root, snapshot_id)
    if file == MANIFEST:
        etag = _manifest_etag(root, snapshot_id)
    else:
        listed = {e["path"]: e["sha256"] for e in (*manifest["files"], *manifest.get("documents", ()))}
        if file not in listed:
            raise HTTPException(
                404, f"snapshot {snapshot_id} has no file {file!r}; its files are listed in its {MANIFEST}"
            )
        etag = f'"{listed[file]}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    path = root / snapshot_id / file
    return FileResponse(
        path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), headers=headers
    )
