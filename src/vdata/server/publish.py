"""`vdata publish OUT_DIR --to-hub REPO_ID`: a snapshot onto the Hugging Face Hub as a dataset repository.

The snapshot folder is already laid out as the Hub expects (README.md with the YAML metadata, data/<config>/
shards, croissant.json), so publishing is `create_repo` + `upload_folder`. Every file is checked against
the manifest first, so a damaged local copy is never published. The repository mirrors the snapshot:
shards no longer in it (rewritten after a re-moderation) are deleted in the same commit, and shards the
Hub already holds are not uploaded again (huggingface_hub skips files whose content is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.server.snapshot import list_snapshots, read_manifest


@dataclass
class Published:
    snapshot_id: str
    repo_url: str
    commit_url: str


def verify_snapshot(folder: Path, manifest: dict) -> None:
    """Raise UserError unless every file the manifest lists is in `folder` with its size and SHA-256."""
    for entry in (*manifest["files"], *manifest.get("documents", ())):
        path = folder / entry["path"]
        if not path.is_file():
            raise UserError(f"{path} is missing; this snapshot is incomplete, take or pull it again")
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise UserError(f"{path} does not match its manifest (sha256); take or pull the snapshot again")


def publish_snapshot(
    root: Path,
    repo_id: str,
    *,
    snapshot: str = "latest",
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> Published:
    """Publish snapshot `snapshot` (latest or an id) under `root` to the dataset repo `repo_id`."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    ids = list_snapshots(root)
    if not ids:
        raise UserError(f"no snapshot in {root}; take one with vdata snapshot {root}")
    snapshot_id = ids[-1] if snapshot == "latest" else snapshot
    manifest = read_manifest(root, snapshot_id)
    folder = root / snapshot_id
    verify_snapshot(folder, manifest)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserError(f"--to-hub {repo_id!r}: give the dataset repository as NAMESPACE/NAME")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            commit_message=f"vdata snapshot {snapshot_id}: {manifest['rows']} records",
            delete_patterns=["data/**"],
        )
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        hint = " (check HF_TOKEN: a write token for that namespace)" if status in (401, 403) else ""
        raise UserError(f"the Hub refused the upload to {repo_id} ({status}){hint}: {e}") from e
    return Published(snapshot_id, str(repo_url), commit.commit_url)
