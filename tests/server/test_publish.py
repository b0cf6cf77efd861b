"""`vdata publish OUT_DIR --to-hub REPO_ID` against a loopback stand-in for the Hub (hub_stub.py): the
real huggingface_hub client, in a subprocess with HF_ENDPOINT pointing at the stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vdata.server.snapshot import take_snapshot

from .hub_stub import TOKEN, HubStub
from .snapshot_helpers import add_records, make_db, set_status, snapshot_settings

T0 = "2026-01-01T00:00:00Z"


def publish(root: Path, hub: HubStub, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        # The stand-in speaks the LFS upload protocol; with hf_xet installed the client would use Xet.
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(root.parent / "hf-home"),
    }
    return subprocess.run(
        [sys.executable, "-m", "vdata.cli", "publish", str(root), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def hub() -> HubStub:
    with HubStub() as stub:
        yield stub


def test_publish_mirrors_the_snapshot_and_uploads_only_new_shards(hub: HubStub, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    old = add_records(engine, 50, "gender", "Hub", moderated_at=T0)
    add_records(engine, 30, "race", "Hub", moderated_at=T0)
    root = tmp_path / "snaps"
    first = take_snapshot(snapshot_settings(url, root), now=datetime(2026, 1, 2, tzinfo=UTC))
    assert first is not None

    done = publish(root, hub, "--to-hub", "vdata/debias")
    assert done.returncode == 0, done.stderr
    assert f"published snapshot {first['snapshot_id']} to {hub.url}/datasets/vdata/debias" in done.stdout
    repo = hub.repos["vdata/debias"]
    assert repo.files == folder_files(root / first["snapshot_id"])
    assert repo.lfs == {e["path"] for e in first["files"]}  # shards travel as LFS objects
    assert len(hub.lfs_uploads) == 2 and repo.commits[-1]["summary"].startswith("vdata snapshot")

    # An incremental snapshot: one new category, and the gender shard rewritten after a rejection.
    add_records(engine, 10, "age", "Hub", moderated_at="2026-01-02T06:00:00Z")
    set_status(engine, old[:1], "rejected", "2026-01-02T06:00:00Z")
    engine.dispose()
    second = take_snapshot(snapshot_settings(url, root), now=datetime(2026, 1, 3, tzinfo=UTC))
    assert second is not None
    done = publish(root, hub, "--to-hub", "vdata/debias")
    assert done.returncode == 0, done.stderr
    # The repository is the second snapshot exactly: the replaced gender shard is gone, the race shard
    # (unchanged) was not uploaded again.
    assert repo.files == folder_files(root / second["snapshot_id"])
    assert len(hub.lfs_uploads) == 2 + len(second["files_added"])


def test_publish_refuses_bad_token_damaged_files_and_bad_repo(hub: HubStub, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 5, "gender", "Hub", moderated_at=T0)
    engine.dispose()
    root = tmp_path / "snaps"
    manifest = take_snapshot(snapshot_settings(url, root), now=datetime(2026, 1, 2, tzinfo=UTC))
    assert manifest is not None

    done = publish(root, hub, "--to-hub", "vdata/debias", token="hf_wrong")
    assert done.returncode == 2 and "HF_TOKEN" in done.stderr and hub.repos == {}
    done = publish(root, hub, "--to-hub", "not-a-repo-id")
    assert done.returncode == 2 and "NAMESPACE/NAME" in done.stderr
    done = publish(tmp_path / "empty", hub, "--to-hub", "vdata/debias")
    assert done.returncode == 2 and "no snapshot" in done.stderr

    shard = root / manifest["snapshot_id"] / manifest["files"][0]["path"]
    os.chmod(shard, 0o644)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    done = publish(root, hub, "--to-hub", "vdata/debias")
    assert done.returncode == 2 and "does not match its manifest" in done.stderr
    assert hub.repos == {} and hub.lfs_uploads == []
