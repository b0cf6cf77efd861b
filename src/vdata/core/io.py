"""Reading and writing records: JSONL, CSV, Parquet (and JSON arrays on read).

Writes are atomic (temp file + rename) so a failure never leaves a half-written output. Long runs
append to a JSONL journal with fsync per batch (`JsonlJournal`), which survives kill -9.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.core.records import JSON_FIELDS, RECORD_FIELDS, Record, file_row_values, parse_record

FORMATS = ("jsonl", "csv", "parquet")


def format_for(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise UserError(f"unknown format {explicit!r}; allowed: {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    if suffix in {"jsonl", "ndjson"}:
        return "jsonl"
    if suffix in FORMATS:
        return suffix
    raise UserError(
        f"cannot tell the format of {path} from its extension; use .jsonl, .csv or .parquet, or set 'format'"
    )


def check_writable(path: Path) -> None:
    """Fail early (before any expensive work) if `path` cannot be created or replaced."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder for {path}: {e.strerror}") from e
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name such as {path / 'out.jsonl'}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path} is not writable; choose another output path or fix its permissions")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename over `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically: readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, doc: Any, indent: int | None = 2) -> None:
    """Write `doc` as JSON atomically (non-JSON values such as paths as their str())."""
    write_text_atomic(path, json.dumps(doc, indent=indent, ensure_ascii=False, default=str) + "\n")


def row_for_csv(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (json.dumps(d[k], ensure_ascii=False) if k in JSON_FIELDS and d[k] is not None else d[k])
        for k in RECORD_FIELDS
    }


def write_records(records: Iterable[Record], path: Path, fmt: str | None = None) -> int:
    """Write records atomically in the format given (or implied by the extension). Returns the count."""
    fmt = format_for(path, fmt)
    rows = [r.to_dict() for r in records]
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as f:
                for d in rows:
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(RECORD_FIELDS))
                w.writeheader()
                for d in rows:
                    w.writerow(row_for_csv(d))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {k: [d[k] for d in rows] for k in RECORD_FIELDS}
            for k in JSON_FIELDS:
                cols[k] = [json.dumps(v, ensure_ascii=False) if v is not None else None for v in cols[k]]
            pq.write_table(pa.table(cols), tmp)
    return len(rows)


def iter_raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line/row number, dict) from a JSONL, JSON-array, CSV or Parquet file."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".jsonl", ".ndjson"}:
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError as e:
                            raise UserError(f"{path}:{n}: not valid JSON ({e.msg})") from e
                        if not isinstance(obj, dict):
                            raise UserError(f"{path}:{n}: expected a JSON object per line")
                        yield n, obj
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise UserError(f"{path}: expected a JSON array of records")
            for n, obj in enumerate(data, 1):
                yield n, obj
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                for n, row in enumerate(csv.DictReader(f), 2):
                    yield n, dict(row)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
                yield n, row
        else:
            raise UserError(f"{path}: unknown file type {suffix!r}; use .jsonl, .json, .csv or .parquet")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text at byte {e.start}; re-encode the file as UTF-8") from e
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON at line {e.lineno} ({e.msg})") from e


def read_records(path: Path) -> list[Record]:
    """Read and validate vdata records (columns that are not record fields are ignored); errors name the
    file, the line and the field."""
    out: list[Record] = []
    for n, row in iter_raw_rows(path):
        try:
            values = file_row_values(row)
            out.append(parse_record({k: v for k, v in values.items() if k in RECORD_FIELDS}))
        except ValueError as e:
            raise UserError(f"{path}:{n}: not a valid vdata record: {e}") from e
    return out


class JsonlJournal:
    """Append-only JSONL file that survives kill -9: each batch is flushed (fsync grouped, see append).

    On open, a torn last line (from a crash mid-write) is truncated away, and the ids already present
    are loaded so a resumed run never writes a record twice.
    """

    def __init__(self, path: Path, fsync_interval_s: float = 0.5) -> None:
        self.path = path
        self.fsync_interval_s = fsync_interval_s
        self._last_fsync = time.monotonic()
        self.ids: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._recover()
        self._f = path.open("a", encoding="utf-8")

    def _recover(self) -> None:
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end != len(data):
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        for line in data[:good_end].decode("utf-8").splitlines():
            if line.strip():
                self.ids.add(json.loads(line)["id"])

    def records(self) -> list[Record]:
        self._f.flush()
        return read_records(self.path) if self.path.stat().st_size else []

    def append(self, records: Iterable[Record]) -> int:
        n = 0
        for r in records:
            if r.id in self.ids:
                continue
            self.ids.add(r.id)
            self._f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            n += 1
        if n:
            # flush() hands the lines to the OS: a killed process (kill -9) loses nothing written.
            # fsync() guards against a machine crash too, but blocks the caller's event loop for
            # ~0.5 ms per call here, so it is grouped: at most one per fsync_interval_s. A record
            # lost to a crash in that window is simply generated again by the next run.
            self._f.flush()
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_interval_s:
                os.fsync(self._f.fileno())
                self._last_fsync = now
        return n

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()

    def __enter__(self) -> JsonlJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
