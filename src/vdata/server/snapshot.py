"""Snapshots: the approved records as files, the way the Hugging Face Hub publishes datasets.

A snapshot is a folder `OUT_DIR/<id>/` holding zstd Parquet shards (`data/<config>/<id>-NNNNN.parquet`,
one config per category, each shard at most `max_shard_bytes`), `manifest.json` (per file: rows,
bytes, sha256, approval dates), a dataset card `README.md` and `croissant.json` (snapshot_card.py).

Incremental: a snapshot covers the records approved up to its `watermark`. The next one reads only the
records moderated after that watermark. New approvals go into new shards; a shard is rewritten only
when one of its records was moderated again (rejected after approval). Unchanged shards are hard-linked
from the previous snapshot (no copy, no rewrite), so each snapshot folder is complete on its own (what
`datasets.load_dataset` and `upload_folder` need) while a daily snapshot writes only the day's changes.

Nothing is half-written: a snapshot is built in a hidden temporary folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.core.io import write_json_atomic
from vdata.core.records import RECORD_FIELDS
from vdata.core.settings import StageSettings, validate_settings

MANIFEST = "manifest.json"
FORMAT = "vdata-snapshot/1"
# Snapshot ids are UTC times: they sort in creation order and name the shards a snapshot added.
SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}Z$")
# Columns of every shard, in order: a record's fields, then who contributed it and when it was approved.
# JSON fields are stored as JSON text, as core.io writes Parquet. The verification gate's `checks` stay in the
# contributor's own files: the server does not store them (moderation is its check).
SHARD_COLUMNS: tuple[str, ...] = (*(f for f in RECORD_FIELDS if f != "checks"), "contributor", "approved_at")


class SnapshotSettings(StageSettings):
    db_url: str
    out_dir: Path
    max_shard_bytes: int = Field(500 * 1024 * 1024, ge=1024)
    row_group_rows: int = Field(100_000, ge=1)
    # Small shards (under 1/8 of max_shard_bytes) a config may gather before they are merged into one.
    compact_after: int = Field(16, ge=2)
    # Records approved in the last `settle_s` seconds wait for the next snapshot: a moderation committed
    # just after the snapshot read the table, stamped with an earlier second, is then never missed.
    settle_s: float = Field(60.0, ge=0)
    license: str = "cc-by-4.0"
    pretty_name: str = "vdata debiasing sentences"
    audit_report: Path | None = None


def make_settings(**values: Any) -> SnapshotSettings:
    return validate_settings(
        SnapshotSettings, values, source="snapshot settings", hint="Check the options of vdata snapshot."
    )


def config_name(category: str) -> str:
    """The Hub config (and folder) of a category: `race+gender` -> `race__gender`; none -> `uncategorised`."""
    return category.replace("+", "__") if category else "uncategorised"


def list_snapshots(root: Path) -> list[str]:
    """Ids of the complete snapshots under `root`, oldest first (temporary folders are never listed)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if SNAPSHOT_ID.match(p.name) and (p / MANIFEST).is_file())


def read_manifest(root: Path, snapshot_id: str) -> dict[str, Any]:
    if not SNAPSHOT_ID.match(snapshot_id):
        raise UserError(f"{snapshot_id!r} is not a snapshot id (like 20260101T000000Z)")
    path = root / snapshot_id / MANIFEST
    if not path.is_file():
        raise UserError(f"no snapshot {snapshot_id} in {root}; list them with GET /v1/snapshots")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


@functools.lru_cache(maxsize=64)
def cached_manifest(root: Path, snapshot_id: str) -> dict[str, Any]:
    """A listed snapshot's manifest, read once per process: a snapshot folder appears complete (renamed
    into place) and never changes. Callers must not modify it."""
    return read_manifest(root, snapshot_id)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------- reading


def _approved_at() -> Any:
    from sqlalchemy import func

    from vdata.server.db import record_store

    # Records approved before moderated_at existed carry none: their submission time stands in.
    return func.coalesce(record_store.c.moderated_at, record_store.c.submitted_at)


def _window(stmt: Any, after: str | None, upto: str) -> Any:
    """`stmt` limited to records moderated in (after, upto]."""
    stmt = stmt.where(_approved_at() <= upto)
    return stmt if after is None else stmt.where(_approved_at() > after)


def _new_categories(engine: Any, after: str | None, upto: str) -> set[str]:
    """Categories with records approved in (after, upto]."""
    from sqlalchemy import select

    from vdata.server.db import record_store

    c = record_store.c
    stmt = _window(select(c.category).where(c.status == "approved").distinct(), after, upto)
    with engine.connect() as conn:
        return set(conn.execute(stmt).scalars())


def _remoderated(engine: Any, after: str, upto: str) -> dict[str, set[str]]:
    """config -> ids of the records moderated in (after, upto] that were submitted by `after`, so may sit
    in the previous snapshot's shards (approved then, moderated again since). Usually few or none."""
    from sqlalchemy import select

    from vdata.server.db import record_store

    c = record_store.c
    stmt = _window(select(c.id, c.category).where(c.submitted_at <= after), after, upto)
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for rid, category in conn.execute(stmt):
            found.setdefault(config_name(category), set()).add(rid)
    return found


def _approved_batches(
    engine: Any, category: str | None, after: str | None, upto: str, size: int
) -> Iterator[Any]:
    """Approved records (of one category, or all) moderated in (after, upto], in insertion order, as Arrow
    tables of at most `size` rows (columns built straight from the fetched tuples: no per-row dicts)."""
    import pyarrow as pa
    from sqlalchemy import select

    from vdata.server.db import record_store

    c = record_store.c
    cols = [c[name] for name in SHARD_COLUMNS if name != "approved_at"]
    stmt = select(*cols, _approved_at().label("approved_at")).where(c.status == "approved")
    if category is not None:
        stmt = stmt.where(c.category == category)
    stmt = _window(stmt, after, upto).order_by(c.seq)
    schema = _schema()
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt)
        for rows in result.partitions(size):
            columns = zip(*rows, strict=True)
            yield pa.Table.from_arrays([pa.array(col, pa.string()) for col in columns], schema=schema)


# --------------------------------------------------------------------------------------- writing


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in SHARD_COLUMNS])


class _ShardWriter:
    """Writes rows of one config into shards of at most `max_bytes`, with each shard's manifest entry."""

    def __init__(self, folder: Path, snapshot_id: str, config: str, settings: SnapshotSettings) -> None:
        self.folder, self.snapshot_id, self.config, self.settings = folder, snapshot_id, config, settings
        self.entries: list[dict[str, Any]] = []
        self._writer: Any = None
        self._path: Path | None = None
        self._rows = 0
        self._dates: list[str] = []
        self._counts: dict[str, Counter[str]] = {}

    def add(self, table: Any) -> None:
        """Append an Arrow table of shard rows; a shard is closed once it reaches the size limit."""
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._open(len(self.entries))
        self._writer.write_table(table, row_group_size=self.settings.row_group_rows)
        self._rows += table.num_rows
        dates = table.column("approved_at").to_pylist()
        self._dates = [min([*self._dates, *dates]), max([*self._dates, *dates])]
        columns = {
            name: table.column(name).to_pylist()
            for name in ("strategy", "provider", "model", "prompt_sha256")
        }
        self._counts["strategy"].update(columns["strategy"])
        self._counts["generator"].update(
            f"{p}/{m}" for p, m in zip(columns["provider"], columns["model"], strict=True)
        )
        self._counts["prompt_sha256"].update(columns["prompt_sha256"])
        assert self._path is not None
        if self._path.stat().st_size >= self.settings.max_shard_bytes:
            self._close()

    def _open(self, start: int) -> None:
        import pyarrow.parquet as pq

        rel = Path("data") / self.config / f"{self.snapshot_id}-{start:05d}.parquet"
        self._path = self.folder / rel
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._path, _schema(), compression="zstd")
        self._rows, self._dates = 0, []
        self._counts = {"strategy": Counter(), "generator": Counter(), "prompt_sha256": Counter()}

    def _close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._path is not None
        self.entries.append(
            {
                "path": self._path.relative_to(self.folder).as_posix(),
                "config": self.config,
                "rows": self._rows,
                "bytes": self._path.stat().st_size,
                "sha256": sha256_file(self._path),
                "min_approved_at": self._dates[0],
                "max_approved_at": self._dates[1],
                "added_in": self.snapshot_id,
                "counts": {k: dict(sorted(v.items())) for k, v in self._counts.items()},
            }
        )
        self._writer = None

    def finish(self) -> list[dict[str, Any]]:
        self._close()
        return self.entries


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        # Another file system (or one without hard links): a copy costs disk, not correctness.
        shutil.copy2(source, target)


def _rewrite_without(source: Path, drop: set[str], writer: _ShardWriter, batch_rows: int) -> None:
    """Stream the rows of an old shard, less `drop`, into `writer` (new shards of this snapshot)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    unwanted = pa.array(sorted(drop), pa.string())
    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        writer.add(table.filter(pc.invert(pc.is_in(table.column("id"), value_set=unwanted))))


def _shard_ids(path: Path) -> set[str]:
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=["id"]).column("id").to_pylist())


def _to_compact(entries: list[dict[str, Any]], settings: SnapshotSettings) -> set[str]:
    """Paths of a config's small shards once there are `compact_after` of them: each incremental
    snapshot adds a small shard per config, and merging them now and then bounds the number of files
    (a reader opens each one) at the cost of rewriting only those small files."""
    small = [e["path"] for e in entries if e["bytes"] < settings.max_shard_bytes // 8]
    return set(small) if len(small) >= settings.compact_after else set()


@contextlib.contextmanager
def _staging(root: Path, snapshot_id: str) -> Iterator[Path]:
    """A hidden folder beside the final one, renamed to `root/<snapshot_id>` only if the block succeeds."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{snapshot_id}.", suffix=".tmp", dir=root))
    try:
        yield tmp
        os.rename(tmp, root / snapshot_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _Unchanged(Exception):
    """Nothing was approved or moderated again since the previous snapshot: no new one is kept."""


def _write_shards(
    engine: Any,
    folder: Path,
    snapshot_id: str,
    previous: dict[str, Any] | None,
    remoderated: dict[str, set[str]],
    watermark: str,
    settings: SnapshotSettings,
) -> list[dict[str, Any]]:
    """Write (or link) every shard of the new snapshot into `folder`; return their manifest entries."""
    import pyarrow.compute as pc

    files: list[dict[str, Any]] = []
    writers: dict[str, _ShardWriter] = {}

    def writer(config: str) -> _ShardWriter:
        return writers.setdefault(config, _ShardWriter(folder, snapshot_id, config, settings))

    # The previous snapshot's shards: linked, or rewritten without records moderated again since (and
    # small ones merged).
    old_by_config: dict[str, list[dict[str, Any]]] = {}
    for entry in previous["files"] if previous else []:
        old_by_config.setdefault(entry["config"], []).append(entry)
    dropped = False
    for config, old in sorted(old_by_config.items()):
        compact = _to_compact(old, settings)
        for entry in old:
            source = settings.out_dir / previous["snapshot_id"] / entry["path"]  # type: ignore[index]
            drop = remoderated[config] & _shard_ids(source) if config in remoderated else set()
            dropped = dropped or bool(drop)
            if drop or entry["path"] in compact:
                _rewrite_without(source, drop, writer(config), settings.row_group_rows)
            else:
                _link_or_copy(source, folder / entry["path"])
                files.append(entry)

    # The approvals since. A first snapshot reads category by category (the status+category index); an
    # incremental one reads the moderation window in one pass and splits each batch by category.
    new_rows = 0
    if previous is None:
        for category in sorted(_new_categories(engine, None, watermark)):
            for table in _approved_batches(engine, category, None, watermark, settings.row_group_rows):
                writer(config_name(category)).add(table)
                new_rows += table.num_rows
    else:
        batches = _approved_batches(engine, None, previous["watermark"], watermark, settings.row_group_rows)
        for table in batches:
            new_rows += table.num_rows
            for category in pc.unique(table.column("category")).to_pylist():
                writer(config_name(category)).add(table.filter(pc.equal(table.column("category"), category)))
    if previous is not None and new_rows == 0 and not dropped:
        raise _Unchanged
    for config in sorted(writers):
        files.extend(writers[config].finish())
    return files


def take_snapshot(settings: SnapshotSettings, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Write a new snapshot under `settings.out_dir` and return its manifest; None when nothing changed
    since the latest snapshot there (nothing is written then)."""
    from sqlalchemy import inspect

    from vdata.server import db
    from vdata.server.snapshot_card import write_card, write_croissant

    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    snapshot_id = moment.strftime("%Y%m%dT%H%M%SZ")
    watermark = _iso(moment - timedelta(seconds=settings.settle_s))
    root = settings.out_dir
    existing = list_snapshots(root)
    if existing and existing[-1] >= snapshot_id:
        raise UserError(f"snapshot {existing[-1]} in {root} is not older than {snapshot_id}; wait a second")
    previous = read_manifest(root, existing[-1]) if existing else None
    after = previous["watermark"] if previous else None
    if after is not None and after >= watermark:
        return None
    audit = _read_audit(settings.audit_report)

    engine = db.make_engine(settings.db_url)
    try:
        if not inspect(engine).has_table("record_store"):
            raise UserError(f"{settings.db_url}: no vdata records table; is this the server's --db?")
        remoderated = _remoderated(engine, after, watermark) if after is not None else {}
        try:
            with _staging(root, snapshot_id) as folder:
                files = _write_shards(engine, folder, snapshot_id, previous, remoderated, watermark, settings)
                manifest = _manifest(snapshot_id, moment, watermark, previous, files)
                documents = [
                    write_card(folder, manifest, settings, audit),
                    write_croissant(folder, manifest, settings, SHARD_COLUMNS),
                ]
                manifest["documents"] = [
                    {"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in documents
                ]
                write_json_atomic(folder / MANIFEST, manifest)
        except _Unchanged:
            return None
    finally:
        engine.dispose()
    return manifest


def _manifest(
    snapshot_id: str,
    moment: datetime,
    watermark: str,
    previous: dict[str, Any] | None,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    files = sorted(files, key=lambda e: e["path"])
    configs: dict[str, dict[str, Any]] = {}
    for entry in files:
        config = configs.setdefault(
            entry["config"], {"category": _category_of(entry), "rows": 0, "bytes": 0, "files": []}
        )
        config["rows"] += entry["rows"]
        config["bytes"] += entry["bytes"]
        config["files"].append(entry["path"])
    return {
        "format": FORMAT,
        "snapshot_id": snapshot_id,
        "created": _iso(moment),
        "watermark": watermark,
        "previous": previous["snapshot_id"] if previous else None,
        "rows": sum(e["rows"] for e in files),
        "bytes": sum(e["bytes"] for e in files),
        "files_added": [e["path"] for e in files if e["added_in"] == snapshot_id],
        "configs": configs,
        "files": files,
    }


def _category_of(entry: dict[str, Any]) -> str:
    config: str = entry["config"]
    return "" if config == "uncategorised" else config.replace("__", "+")


def _read_audit(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"--audit-report {path}: no such file; give the report.json vdata audit wrote") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"--audit-report {path}: not a JSON file ({e})") from e
    if not isinstance(report, dict):
        raise UserError(f"--audit-report {path}: expected a JSON object (vdata audit's report.json)")
    return report
