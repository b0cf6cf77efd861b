"""The SOURCE of `vdata benchmark-dataset`: the approved records of a server database, a snapshot, or files.

Whatever the kind, the records are written to one JSONL file in a canonical order (by record id, then
text), so the same data gives the same file, the same `data_sha256` and the same step fingerprints,
whether it came from the database, from a snapshot of it or from an export.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vdata.core.errors import UserError
from vdata.core.io import read_records, write_records
from vdata.core.records import PUBLIC_COLUMNS, RECORD_FIELDS, Record, parse_record

SourceKind = Literal["snapshot", "database", "files"]
RECORD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
DB_SCHEMES = ("sqlite", "postgresql", "postgres")
PAGE_SIZE = 5000


@dataclass(frozen=True)
class SourceData:
    kind: SourceKind
    snapshot_id: str | None
    records: list[Record]
    where: str  # what was read, in words (for messages)

    def data_sha256(self) -> str:
        """SHA-256 over the records' identity and content fields, one canonical JSON line each, in order."""
        h = hashlib.sha256()
        for r in self.records:
            line = [r.id, r.text, r.target, r.attribute, r.category]
            h.update(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
        return h.hexdigest()

    def by_category(self) -> dict[str, int]:
        counts = Counter(r.category or "uncategorised" for r in self.records)
        return dict(sorted(counts.items()))


def _canonical(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.id, r.text))


def is_database_url(source: str) -> bool:
    scheme = source.split("://", 1)[0].split("+", 1)[0].lower() if "://" in source else ""
    return scheme in DB_SCHEMES


def read_source(source: str) -> SourceData:
    """Read SOURCE (see the module doc); a UserError naming the problem and the accepted kinds otherwise."""
    if "://" in source:
        if not is_database_url(source):
            raise UserError(
                f"SOURCE {source!r}: unknown database URL scheme; use sqlite:///PATH or postgresql://..."
            )
        return _from_database(source)
    paths = [Path(p) for p in source.split(",") if p.strip()]
    if len(paths) == 1 and paths[0].is_dir():
        return _from_folder(paths[0])
    return _from_files(paths)


def _from_folder(folder: Path) -> SourceData:
    if (folder / "manifest.json").is_file():
        return _from_snapshot(folder)
    from vdata.server.snapshot import list_snapshots

    ids = list_snapshots(folder)
    if ids:
        return _from_snapshot(folder / ids[-1])
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in RECORD_SUFFIXES)
    if not files:
        raise UserError(
            f"SOURCE {folder} is a folder with no snapshot (manifest.json) and no record files "
            f"({', '.join(RECORD_SUFFIXES)}); give a snapshot folder, record files or a database URL"
        )
    return _from_files(files)


def _from_snapshot(folder: Path) -> SourceData:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        snapshot_id = manifest["snapshot_id"]
        shard_paths = [folder / entry["path"] for entry in manifest["files"]]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(
            f"SOURCE {folder}/manifest.json is not a vdata snapshot manifest ({e}); give the folder "
            "`vdata snapshot` wrote"
        ) from e
    missing = [str(p) for p in shard_paths if not p.is_file()]
    if missing:
        raise UserError(f"snapshot {snapshot_id}: shard(s) missing: {', '.join(missing[:3])}; pull it again")
    records = [r for p in shard_paths for r in read_records(p)]
    return SourceData("snapshot", snapshot_id, _canonical(records), f"snapshot {snapshot_id} ({folder})")


def _from_files(paths: list[Path]) -> SourceData:
    if not paths:
        raise UserError("SOURCE is empty; give a database URL, a snapshot folder or record files")
    for p in paths:
        if not p.exists():
            raise UserError(
                f"SOURCE {p} does not exist; give a database URL (sqlite:///..., postgresql://...), a "
                "snapshot folder or record files (.jsonl, .csv, .parquet)"
            )
        if p.suffix.lower() not in RECORD_SUFFIXES:
            raise UserError(
                f"SOURCE {p}: not a record file; use .jsonl, .csv or .parquet vdata records (convert Han et "
                "al.'s JSON with `vdata.core.han`), a snapshot folder or a database URL"
            )
    records = [r for p in paths for r in read_records(p)]
    return SourceData("files", None, _canonical(records), ", ".join(map(str, paths)))


def _from_database(url: str) -> SourceData:
    """The approved records, read page by page with the server's own keyset-paged query."""
    from sqlalchemy.exc import SQLAlchemyError

    from vdata.server.db import make_engine
    from vdata.server.store import decode_cursor, fetch_page, records_query

    engine = make_engine(url)
    records: list[Record] = []
    after: int | None = None
    try:
        while True:
            query = records_query(status="approved", columns=PUBLIC_COLUMNS, after_seq=after, limit=PAGE_SIZE)
            rows, cursor = fetch_page(engine, query)
            records += [_db_record(row) for row in rows]
            if cursor is None:
                break
            after = decode_cursor(cursor)
    except SQLAlchemyError as e:
        raise UserError(
            f"SOURCE {url}: cannot read approved records ({str(e).splitlines()[0]}); check the URL and that "
            "`vdata serve` has created the database"
        ) from e
    finally:
        engine.dispose()
    return SourceData("database", None, _canonical(records), url)


def _db_record(row: dict[str, Any]) -> Record:
    return parse_record({k: v for k, v in row.items() if k in RECORD_FIELDS and v not in (None, "")})


def write_source(data: SourceData, path: Path) -> None:
    """The records as JSONL, in their canonical order (atomic)."""
    write_records(data.records, path)
