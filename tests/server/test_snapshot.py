"""`vdata snapshot`: Parquet shards, manifest, dataset card and Croissant; incremental; atomic (SQLite and
PostgreSQL). The files are read back by DuckDB, `datasets` and mlcroissant, as users will read them."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from vdata.core.fingerprint import sha256_file
from vdata.server import snapshot as snapshot_module
from vdata.server.db import record_store
from vdata.server.snapshot import list_snapshots, take_snapshot

from .conftest import new_db_url
from .snapshot_helpers import add_records, make_db, set_status, snapshot_settings

T0 = "2026-01-01T00:00:00Z"
T1 = datetime(2026, 1, 2, tzinfo=UTC)
T1_5 = "2026-01-02T12:00:00Z"
T2 = datetime(2026, 1, 3, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_db_url(request.param, request, tmp_path_factory)


def approved_ids(url: str) -> set[str]:
    engine = make_db(url)
    with engine.connect() as conn:
        ids = set(
            conn.execute(select(record_store.c.id).where(record_store.c.status == "approved")).scalars()
        )
    engine.dispose()
    return ids


def snapshot_ids(folder: Path) -> list[str]:
    import duckdb

    con = duckdb.connect()
    rows = con.execute(f"SELECT id FROM read_parquet('{folder}/data/*/*.parquet')").fetchall()
    return [r[0] for r in rows]


def test_first_snapshot_files_card_croissant_and_readers(db_url: str, tmp_path: Path) -> None:
    engine = make_db(db_url)
    gender = add_records(engine, 30, "gender", "Old", moderated_at=T0)
    add_records(engine, 20, "race+gender", "Old", moderated_at=T0)
    add_records(engine, 5, "religion", "Waiting", status="pending")
    add_records(engine, 5, "age", "Refused", status="rejected", moderated_at=T0)
    engine.dispose()
    out = tmp_path / "snaps"
    manifest = take_snapshot(snapshot_settings(db_url, out), now=T1)
    assert manifest is not None
    folder = out / manifest["snapshot_id"]
    assert list_snapshots(out) == [manifest["snapshot_id"]] == ["20260102T000000Z"]
    assert sorted(manifest["configs"]) == ["gender", "race__gender"]
    assert manifest["rows"] == 50 and manifest["configs"]["race__gender"]["category"] == "race+gender"
    for entry in manifest["files"]:
        path = folder / entry["path"]
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows == entry["rows"]
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert entry["min_approved_at"] == entry["max_approved_at"] == T0
    for doc in manifest["documents"]:
        assert doc["sha256"] == sha256_file(folder / doc["path"])
    assert json.loads((folder / "manifest.json").read_text()) == manifest

    # DuckDB reads the shards as they are: exactly the approved records, pending and rejected left out.
    assert sorted(snapshot_ids(folder)) == sorted(approved_ids(db_url))
    assert set(gender) <= set(snapshot_ids(folder))

    # The dataset card: Hub YAML metadata, then how the data was made.
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["pretty_name"]
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in meta["configs"]}
    assert configs == {
        "default": "data/*/*.parquet",
        "gender": "data/gender/*.parquet",
        "race__gender": "data/race__gender/*.parquet",
    }
    for heading in ("## How the data was made", "### Generators", "### Strategies", "### Prompt templates"):
        assert heading in card
    assert "### Moderation" in card and "## Bias, risks and known limitations" in card
    assert "`stub/model-0`" in card and "0" * 64 in card

    # Croissant: valid for mlcroissant, with the Responsible AI fields, and its records readable.
    import mlcroissant as mlc

    doc = json.loads((folder / "croissant.json").read_text())
    for field in ("rai:dataCollection", "rai:dataBiases", "rai:dataLimitations"):
        assert doc[field]
    assert "Machine-generated" in doc["rai:dataCollectionType"]
    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))
    assert dataset.metadata.data_collection == doc["rai:dataCollection"]
    rows = list(dataset.records("records"))
    assert len(rows) == 50


def test_datasets_library_loads_the_snapshot(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 12, "gender", "Loaded", moderated_at=T0)
    add_records(engine, 8, "race", "Loaded", moderated_at=T0)
    engine.dispose()
    manifest = take_snapshot(snapshot_settings(url, tmp_path / "snaps"), now=T1)
    assert manifest is not None
    folder = tmp_path / "snaps" / manifest["snapshot_id"]
    everything = datasets.load_dataset(
        "parquet", data_dir=str(folder / "data"), cache_dir=str(tmp_path / "c")
    )
    assert everything["train"].num_rows == 20
    gender = datasets.load_dataset(
        "parquet", data_dir=str(folder / "data" / "gender"), cache_dir=str(tmp_path / "c")
    )
    assert set(gender["train"]["category"]) == {"gender"} and gender["train"].num_rows == 12


def test_second_snapshot_writes_only_what_changed(db_url: str, tmp_path: Path) -> None:
    engine = make_db(db_url)
    old_gender = add_records(engine, 20, "gender", "Old", moderated_at=T0)
    add_records(engine, 10, "race", "Old", moderated_at=T0)
    late = add_records(engine, 4, "race", "Late", status="pending")
    out = tmp_path / "snaps"
    first = take_snapshot(snapshot_settings(db_url, out), now=T1)
    assert first is not None

    # Between the snapshots: new gender and disability records, a pending race record approved, and one
    # old gender record rejected after its approval (its shard must be rewritten without it).
    add_records(engine, 6, "gender", "New", moderated_at=T1_5)
    add_records(engine, 3, "disability", "New", moderated_at=T1_5)
    set_status(engine, late[:2], "approved", T1_5)
    set_status(engine, old_gender[:1], "rejected", T1_5)
    engine.dispose()
    second = take_snapshot(snapshot_settings(db_url, out), now=T2)
    assert second is not None and second["previous"] == first["snapshot_id"]
    folder1, folder2 = out / first["snapshot_id"], out / second["snapshot_id"]

    by_path = {e["path"]: e for e in second["files"]}
    old_race = next(e for e in first["files"] if e["config"] == "race")
    old_gender_shard = next(e for e in first["files"] if e["config"] == "gender")
    # The untouched race shard is carried over: same entry, same bytes on disk (a hard link, not a copy).
    assert by_path[old_race["path"]] == old_race
    assert os.stat(folder1 / old_race["path"]).st_ino == os.stat(folder2 / old_race["path"]).st_ino
    # The gender shard that held the rejected record is replaced; everything added is this snapshot's.
    assert old_gender_shard["path"] not in by_path
    assert set(second["files_added"]) == {
        p for p, e in by_path.items() if e["added_in"] == second["snapshot_id"]
    }
    assert {by_path[p]["config"] for p in second["files_added"]} == {"gender", "race", "disability"}
    assert all(by_path[p]["max_approved_at"] <= T1_5 for p in second["files_added"])

    # The second snapshot alone is the whole dataset now; the first one is unchanged.
    assert sorted(snapshot_ids(folder2)) == sorted(approved_ids(db_url))
    assert old_gender[0] not in snapshot_ids(folder2) and old_gender[0] in snapshot_ids(folder1)
    assert second["rows"] == 20 - 1 + 10 + 6 + 3 + 2
    assert sorted(snapshot_ids(folder1)) == sorted(
        r
        for e in first["files"]
        for r in pq.read_table(folder1 / e["path"], columns=["id"]).column("id").to_pylist()
    )

    # Nothing changed since: no third snapshot, nothing written.
    before = sorted(p.name for p in out.iterdir())
    assert take_snapshot(snapshot_settings(db_url, out), now=datetime(2026, 1, 4, tzinfo=UTC)) is None
    assert sorted(p.name for p in out.iterdir()) == before
    # A pending record rejected changes no published record: still no new snapshot.
    engine = make_db(db_url)
    set_status(engine, late[2:3], "rejected", "2026-01-04T06:00:00Z")
    engine.dispose()
    assert take_snapshot(snapshot_settings(db_url, out), now=datetime(2026, 1, 5, tzinfo=UTC)) is None
    assert sorted(p.name for p in out.iterdir()) == before


def test_shards_are_cut_at_the_size_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 400, "gender", "Many", moderated_at=T0)
    engine.dispose()
    settings = snapshot_settings(url, tmp_path / "snaps", max_shard_bytes=4096, row_group_rows=50)
    manifest = take_snapshot(settings, now=T1)
    assert manifest is not None
    assert len(manifest["files"]) > 1
    # A shard is closed at the first row group that takes it over the limit.
    assert all(e["bytes"] < 4096 + 8 * 1024 for e in manifest["files"])
    assert sum(e["rows"] for e in manifest["files"]) == 400


def test_interrupted_snapshot_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 10, "gender", "Kept", moderated_at=T0)
    engine.dispose()
    out = tmp_path / "snaps"

    def interrupted(path: Path) -> str:
        raise KeyboardInterrupt  # Ctrl-C while the files are being hashed

    monkeypatch.setattr(snapshot_module, "sha256_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        take_snapshot(snapshot_settings(url, out), now=T1)
    assert list(out.iterdir()) == [] and list_snapshots(out) == []


def test_cli_snapshot_and_bad_input(tmp_path: Path) -> None:
    import typer

    from vdata.server.cli_snapshot import register_snapshot

    app = typer.Typer()
    register_snapshot(app)
    app.command("noop")(lambda: None)  # a second command keeps `snapshot` a named subcommand
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    add_records(engine, 5, "gender", "Cli", moderated_at=T0)
    engine.dispose()
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps({"n_records": 5, "diversity": {"distinct_2": 0.71}, "hygiene": {"refusals": 0}})
    )
    runner = CliRunner()
    done = runner.invoke(app, ["snapshot", str(tmp_path / "s"), "--db", url, "--audit-report", str(report)])
    assert done.exit_code == 0, done.output
    assert "5 records in 1 files (1 new)" in done.output
    (snapshot_id,) = list_snapshots(tmp_path / "s")
    card = (tmp_path / "s" / snapshot_id / "README.md").read_text()
    assert "| diversity.distinct_2 | 0.71 |" in card and "| records audited | 5 |" in card
    done = runner.invoke(
        app, ["snapshot", str(tmp_path / "s2"), "--db", url, "--audit-report", "/nonexistent.json"]
    )
    assert done.exit_code != 0 and "no such file" in str(done.exception)
    assert not (tmp_path / "s2").exists() or list_snapshots(tmp_path / "s2") == []


def test_small_shards_of_daily_snapshots_are_merged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_db(url)
    out = tmp_path / "snaps"
    manifests = []
    for day in range(1, 5):
        add_records(engine, 10, "gender", f"Day{day}", moderated_at=f"2026-01-0{day}T01:00:00Z")
        manifest = take_snapshot(
            snapshot_settings(url, out, compact_after=3), now=datetime(2026, 1, day, 12, tzinfo=UTC)
        )
        assert manifest is not None
        manifests.append(manifest)
    engine.dispose()
    # Three small shards: the next snapshot merges them with its new rows into one.
    assert [len(m["files"]) for m in manifests] == [1, 2, 3, 1]
    merged = manifests[3]["files"][0]
    assert merged["rows"] == 40 and merged["added_in"] == manifests[3]["snapshot_id"]
    assert merged["min_approved_at"] == "2026-01-01T01:00:00Z"
    assert merged["max_approved_at"] == "2026-01-04T01:00:00Z"
    assert sorted(snapshot_ids(out / manifests[3]["snapshot_id"])) == sorted(approved_ids(url))
