"""Archive (migration 0006, archive.py): old months leave the hot table after a verified snapshot and come
back from it unchanged, on SQLite and PostgreSQL; every refusal changes nothing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from vdata.core.errors import UserError
from vdata.core.records import Record
from vdata.server import archive, store
from vdata.server.db import record_store
from vdata.server.snapshot import list_snapshots, take_snapshot

from .conftest import new_db_url, run_in_threads, start_server
from .snapshot_helpers import add_records, downgrade, make_db, snapshot_settings

NOW = datetime(2026, 6, 15, tzinfo=UTC)  # "12mo" before it: months up to 2025-05 go
MONTHS = {
    "2025-01": "2025-01-10T08:00:00Z",
    "2025-03": "2025-03-31T23:59:59Z",
    "2026-02": "2026-02-01T00:00:00Z",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_db_url(request.param, request, tmp_path_factory)


def fill(engine: Engine) -> dict[str, list[str]]:
    """Approved and rejected records in three months (two older than a year before NOW), moderated then."""
    ids: dict[str, list[str]] = {}
    for n, (month, submitted) in enumerate(MONTHS.items()):
        approved = add_records(engine, 6 + n, ("gender", "race", "religion")[n], f"A{month}")
        rejected = add_records(engine, 2, "age", f"R{month}", status="rejected")
        with engine.begin() as conn:  # on PostgreSQL this moves the rows to another partition
            conn.execute(
                update(record_store)
                .where(record_store.c.id.in_(approved + rejected))
                .values(submitted_at=submitted)
            )
        ids[month] = approved + rejected
    return ids


def all_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return list(conn.execute(select(record_store).order_by(record_store.c.seq)).all())


@contextlib.contextmanager
def row_changed(engine: Engine, record_id: str, **values: Any) -> Iterator[None]:
    """The record with `values` while the block runs, then as it was."""
    row = record_store.c.id == record_id
    with engine.begin() as conn:
        before = conn.execute(select(*(record_store.c[k] for k in values)).where(row)).one()._asdict()
        conn.execute(update(record_store).where(row).values(**values))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(update(record_store).where(row).values(**before))


def partition_exists(engine: Engine, month: str) -> bool:
    with engine.connect() as conn:
        name = f"record_store_p{month.replace('-', '_')}"
        return conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None


def prepared(db_url: str, tmp_path: Path) -> tuple[Engine, dict[str, list[str]], Path]:
    engine = make_db(db_url)
    ids = fill(engine)
    out = tmp_path / "snapshots"
    assert take_snapshot(snapshot_settings(db_url, out)) is not None
    return engine, ids, out


def test_archive_then_restore_gives_back_every_row_and_column(db_url: str, tmp_path: Path) -> None:
    engine, ids, out = prepared(db_url, tmp_path)
    before, stats_before = all_rows(engine), store.stats(engine)
    postgres = engine.dialect.name == "postgresql"

    planned = archive.archive(engine, out, older_than="12mo", dry_run=True, now=NOW)
    assert [(p.month, p.rows, p.approved, p.other) for p in planned.months] == [
        ("2025-01", 8, 6, 2),
        ("2025-03", 9, 7, 2),
    ]
    assert all_rows(engine) == before  # a dry run changes nothing
    assert archive.coverage(engine) is None

    done = archive.archive(engine, out, older_than="12mo", now=NOW)
    assert [p.month for p in done.months] == ["2025-01", "2025-03"]
    hot = all_rows(engine)
    assert {r.id for r in hot} == set(ids["2026-02"])
    # The counts describe the whole dataset, archived months included.
    assert store.stats(engine) == stats_before
    if postgres:
        assert not partition_exists(engine, "2025-01") and not partition_exists(engine, "2025-03")
    cover = archive.coverage(engine)
    assert cover is not None
    assert cover["archived_months"] == ["2025-01", "2025-03"] and cover["archived_rows"] == 17
    assert cover["snapshots"] == list_snapshots(out)
    assert "2025-01 to 2025-03" not in cover["note"]  # 2025-02 is not archived: the months are listed
    assert "2025-01, 2025-03" in cover["note"] and cover["live_since"] is None

    # Dedup still refuses a re-upload of an archived record, approved or rejected.
    archived_texts = [
        "A2025-01 sentence 0 in gender: anyone can be an engineer or a nurse.",
        "R2025-03 sentence 1 in age: anyone can be an engineer or a nurse.",
    ]
    outcome = store.put_records(engine, [Record(text=t) for t in archived_texts], "again")
    assert outcome.accepted == [] and len(outcome.duplicates) == 2
    assert store.stats(engine) == stats_before

    # A later, incremental snapshot of the same folder still holds the archived months: restore from it.
    moment = datetime.now(UTC)
    approved_at = (moment + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # after the first watermark
    later = add_records(engine, 2, "gender", "Later", moderated_at=approved_at)
    second = take_snapshot(snapshot_settings(db_url, out), now=moment + timedelta(seconds=2))
    assert second is not None and second["previous"] == done.snapshot_id
    assert archive.restore(engine, "2025-03", out, snapshot_id=second["snapshot_id"]) == 9
    with engine.begin() as conn:
        conn.execute(record_store.delete().where(record_store.c.id.in_(later)))
    only_oldest = archive.coverage(engine)
    assert only_oldest is not None and only_oldest["live_since"] == "2025-02"
    assert only_oldest["note"].startswith(
        "live records submitted since 2025-02; 8 records of 2025-01 are archived"
    )
    assert archive.restore(engine, "2025-01", out) == 8
    assert all_rows(engine) == before  # every row, every column, seq included
    assert store.stats(engine) == stats_before
    assert archive.coverage(engine) is None
    if postgres:
        assert partition_exists(engine, "2025-01")
    # Restored records are live again: a re-upload is a duplicate because they are in the hot table.
    again = store.put_records(engine, [Record(text=archived_texts[0])], "again")
    assert again.accepted == []
    engine.dispose()


def test_refusals_change_nothing(db_url: str, tmp_path: Path) -> None:
    engine, ids, out = prepared(db_url, tmp_path)
    before = all_rows(engine)

    with pytest.raises(UserError, match="give a positive age like 12mo"):
        archive.archive(engine, out, older_than="12 months", now=NOW)
    with pytest.raises(UserError, match="not a month"):
        archive.archive(engine, out, months=["2025-13"])
    with pytest.raises(UserError, match="2025-02: no records in the hot table"):
        archive.archive(engine, out, months=["2025-02"])
    with pytest.raises(UserError, match="2099-01 is not over yet"):
        archive.archive(engine, out, months=["2099-01"])
    with pytest.raises(UserError, match="no snapshot there"):
        archive.archive(engine, tmp_path / "empty", older_than="12mo", now=NOW)

    # A record of 2025-03 approved after the snapshot's watermark: the snapshot does not cover it.
    with engine.begin() as conn:
        conn.execute(
            update(record_store)
            .where(record_store.c.id == ids["2025-03"][-1])
            .values(status="approved", moderated_at="2099-01-01T00:00:00Z")
        )
    with pytest.raises(UserError, match="does not cover 1 record"):
        archive.archive(engine, out, older_than="12mo", now=NOW)
    with engine.begin() as conn:
        conn.execute(
            update(record_store)
            .where(record_store.c.id == ids["2025-03"][-1])
            .values(status="rejected", moderated_at="2025-04-01T00:00:00Z")
        )
    changed = all_rows(engine)

    # A record whose text changed since the snapshot: the row-by-row comparison finds it.
    with (
        row_changed(engine, ids["2025-01"][0], target="someone else"),
        pytest.raises(UserError, match="1 different from the database"),
    ):
        archive.archive(engine, out, older_than="12mo", now=NOW)

    # A pending record in the month: it is in no snapshot.
    with (
        row_changed(engine, ids["2025-01"][1], status="pending"),
        pytest.raises(UserError, match="await moderation"),
    ):
        archive.archive(engine, out, older_than="12mo", now=NOW)

    # A corrupt shard (one byte flipped): its sha256 no longer matches the manifest.
    snapshot_dir = out / list_snapshots(out)[-1]
    shard = sorted(snapshot_dir.glob("data/gender/*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(shard, 0o644)
    shard.unlink()  # a hard link may be shared with another snapshot: replace, do not write through it
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the sha256 of its manifest"):
        archive.archive(engine, out, older_than="12mo", now=NOW)

    assert all_rows(engine) == changed
    assert [r.id for r in before] == [r.id for r in changed]
    assert archive.coverage(engine) is None
    with pytest.raises(UserError, match="is not archived"):
        archive.restore(engine, "2025-01", out)
    engine.dispose()


def test_cli_archives_refuses_with_exit_2_and_restores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    engine, _, out = prepared(url, tmp_path)
    before = all_rows(engine)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def vdata(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from vdata.cli import main; main()", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    bad = vdata("archive", "--db", url, "--older-than", "a year", "--snapshot", str(out))
    assert bad.returncode == 2 and "give a positive age like 12mo" in bad.stderr
    listed = vdata("archive", "--db", url, "--older-than", "1d", "--snapshot", str(out), "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "2025-01\twould archive 8 records" in listed.stdout and "2026-02\twould archive" in listed.stdout
    done = vdata("archive", "--db", url, "--month", "2025-03", "--snapshot", str(out))
    assert done.returncode == 0, done.stderr
    assert "2025-03\tarchived 9 records (7 approved, 2 unpublished" in done.stdout
    again = vdata("archive", "--db", url, "--month", "2025-03", "--snapshot", str(out))
    assert again.returncode == 2 and "already archived" in again.stderr
    restored = vdata("archive", "restore", "2025-03", "--db", url, "--snapshot", str(out))
    assert restored.returncode == 0 and "restored 9 records" in restored.stdout, restored.stderr
    assert all_rows(engine) == before
    engine.dispose()


def test_query_and_pages_say_what_the_live_table_covers(db_url: str, tmp_path: Path) -> None:
    engine, ids, out = prepared(db_url, tmp_path)
    archive.archive(engine, out, months=["2025-01", "2025-03"])
    engine.dispose()
    threaded, server = start_server(db_url, snapshots_dir=out)
    try:
        response = server.http.get("/v1/query", params={"sql": "SELECT COUNT(*) AS n FROM records"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rows"] == [[len(ids["2026-02"]) - 2]]  # the live table: 2026-02's approved records
        assert body["coverage"]["archived_months"] == ["2025-01", "2025-03"]
        assert "are archived in snapshot" in body["coverage"]["note"]
        # The snapshot engine reads the Parquet files, archived months included: no coverage note.
        whole = server.http.get(
            "/v1/query", params={"sql": "SELECT COUNT(*) AS n FROM records", "engine": "snapshot"}
        )
        assert whole.status_code == 200, whole.text
        assert whole.json()["rows"] == [[6 + 7 + 8]] and "coverage" not in whole.json()
        for page in ("/sql?q=SELECT+1", "/records", "/"):
            html = server.http.get(page).text
            assert "records of 2025-01, 2025-03 are archived in snapshot" in html, page
    finally:
        server.close()
        threaded.__exit__(None, None, None)


@pytest.mark.postgres
def test_postgres_upgrade_partitions_existing_records_and_downgrades(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from alembic import command

    from vdata.server import db

    url = new_db_url("postgres", request, tmp_path_factory)
    engine = db.make_engine(url)
    config = db.alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005_scale")
    old_ids = add_records(engine, 5, "gender", "Old")  # submitted 2025-12-31
    before, stats_before = all_rows(engine), store.stats(engine)
    db.upgrade(engine)

    def kind() -> str:
        with engine.connect() as conn:
            return str(
                conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'record_store'")).scalar()
            )

    assert kind() == "p" and partition_exists(engine, "2025-12")
    assert all_rows(engine) == before and store.stats(engine) == stats_before
    # New rows continue the sequence; a text stored in another month's partition is still a duplicate.
    fresh = store.put_records(engine, [Record(text="A brand new sentence about engineers and nurses.")], "n")
    again = store.put_records(
        engine, [Record(text="Old sentence 0 in gender: anyone can be an engineer or a nurse.")], "n"
    )
    assert len(fresh.accepted) == 1 and again.accepted == [] and len(again.duplicates) == 1
    with engine.connect() as conn:
        seqs = dict(conn.execute(select(record_store.c.id, record_store.c.seq)).all())
    assert seqs[fresh.accepted[0]] > max(seqs[i] for i in old_ids)
    with engine.begin() as conn:  # a deleted record frees its key, as the unique constraint did
        conn.execute(record_store.delete().where(record_store.c.id == old_ids[0]))
    assert (
        len(
            store.put_records(
                engine, [Record(text="Old sentence 0 in gender: anyone can be an engineer or a nurse.")], "n"
            ).accepted
        )
        == 1
    )

    downgrade(engine, "0005_scale")
    assert kind() == "r"
    with engine.connect() as conn:
        constraints = set(
            conn.execute(
                text("SELECT conname FROM pg_constraint WHERE conrelid = 'record_store'::regclass")
            ).scalars()
        )
    assert {"record_store_pkey", "record_store_id_key", "record_store_content_sha256_key"} <= constraints
    assert (
        store.put_records(
            engine, [Record(text="A brand new sentence about engineers and nurses.")], "n"
        ).accepted
        == []
    )
    engine.dispose()


def test_downgrade_refuses_while_months_are_archived(tmp_path: Path) -> None:
    from vdata.server import db

    url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    engine, _, out = prepared(url, tmp_path)
    archive.archive(engine, out, months=["2025-01"])
    with pytest.raises(RuntimeError, match="2025-01 are archived; bring them back first"):
        downgrade(engine, "0005_scale")
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


@pytest.mark.postgres
def test_postgres_concurrent_puts_of_the_same_texts_store_each_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The key table replaces the unique constraints: racing PUTs of one text still store it once."""
    engine = make_db(new_db_url("postgres", request, tmp_path_factory))
    shared = [
        Record(text=f"Shared sentence {i}: a nurse can be anyone, so can an engineer.") for i in range(40)
    ]
    accepted: list[str] = []
    lock = threading.Lock()

    def put(n: int) -> None:
        for i in range(0, len(shared), 10):
            own = Record(text=f"Own sentence {n}-{i} about engineers and nurses.")
            outcome = store.put_records(engine, [*shared[i : i + 10], own], f"c{n}")
            with lock:
                accepted.extend(outcome.accepted)

    run_in_threads(put, 6)
    stored = [r.id for r in all_rows(engine)]
    assert len(stored) == len(set(stored)) == 40 + 6 * 4
    assert sorted(accepted) == sorted(stored)  # every stored record was reported accepted exactly once
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM record_keys")).scalar_one() == len(stored)
    engine.dispose()


def test_restore_refuses_a_corrupt_snapshot_and_keeps_the_month_archived(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    engine, ids, out = prepared(url, tmp_path)
    archive.archive(engine, out, months=["2025-01"])
    shard = sorted((out / list_snapshots(out)[-1]).glob("data/gender/*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the sha256 of its manifest"):
        archive.restore(engine, "2025-01", out)
    cover = archive.coverage(engine)
    assert cover is not None and cover["archived_months"] == ["2025-01"]
    assert not {r.id for r in all_rows(engine)} & set(ids["2025-01"])
    engine.dispose()
