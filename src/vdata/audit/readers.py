"""Streaming readers for every input `vdata audit` accepts.

Formats (chosen by extension): vdata records or any rows with a text column in JSONL / CSV / TSV /
Parquet / JSON arrays; plain text (.txt, one sentence per line); and Han et al.'s two released forms,
``[[sentence, target, attribute], ...]`` and ``[{"prompt": "the {} was ", "subject": ..., "target_new":
{"str": ...}}, ...]``. Rows that cannot become a sentence are yielded as *malformed* items (a hygiene
count), whereas a file that cannot be read at all (empty, not UTF-8, no text column) is a `UserError`
naming the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vdata.core.errors import UserError
from vdata.core.han import parse_han_prompt, parse_han_triple
from vdata.core.records import (
    BASE_CATEGORIES,
    JSON_FIELDS,
    RECORD_FIELDS,
    Record,
    record_id,
    validate_category,
)

TEXT_SUFFIXES = (".txt", ".text")
SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", *TEXT_SUFFIXES)
AUTO_TEXT_COLUMNS = ("text", "sentence")
_CATEGORY_HINTS = {"racial": "race", "race": "race", "ses": "socioeconomic", "general": ""}


@dataclass(slots=True)
class AuditItem:
    """One input row: a sentence with what is known about it, or a malformed row (text None)."""

    ordinal: int
    source: str
    line: int
    text: str | None
    id: str = ""
    category: str = ""
    target: str = ""
    attribute: str = ""
    attributes: dict[str, Any] | None = None
    record: Record | None = None
    malformed: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def canonical_category(value: object) -> str:
    """A category label from data ("Gender", "race", "general", "race+gender") in vdata's spelling, or ""."""
    if not isinstance(value, str) or not value.strip():
        return ""
    raw = value.strip().lower()
    if raw in _CATEGORY_HINTS:
        return _CATEGORY_HINTS[raw]
    try:
        return validate_category(raw)
    except ValueError:
        return raw


def category_from_path(path: Path) -> str:
    """Han et al.'s [S, T, A] files carry no category; their folder/file names do (Gender, Racial, ...)."""
    words = {w for part in path.parts for w in part.lower().replace("-", "_").split("_")}
    for word, cat in (("gender", "gender"), ("racial", "race"), ("race", "race"), ("religion", "religion")):
        if word in words:
            return cat
    for cat in BASE_CATEGORIES:
        if cat in words or cat.replace("-", "_") in path.name.lower():
            return cat
    return ""


def snapshot_files(folder: Path) -> list[Path] | None:
    """The Parquet shards a snapshot folder's manifest.json lists (docs/snapshots.md), or None if the folder
    is not a snapshot. Its other files (manifest, croissant.json, README.md) are metadata, not data."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        return [folder / entry["path"] for entry in files]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(
            f"{manifest}: not a vdata snapshot manifest ({e}); audit its data/ folder instead"
        ) from e


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files to read: each path itself, a snapshot's shards, or the supported files under a folder (sorted,
    recursive)."""
    out: list[Path] = []
    for p in paths:
        shards = snapshot_files(p) if p.is_dir() else None
        if shards is not None:
            out.extend(shards)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise UserError(
                    f"{p}: folder holds no data files; expected {', '.join(SUPPORTED_SUFFIXES)} files"
                )
            out.extend(found)
        elif not p.exists():
            raise UserError(f"{p}: no such file; check the path")
        else:
            out.append(p)
    return out


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}:{line}: not UTF-8 text (byte {e.start} of that line); the file mixes encodings — "
            "re-encode it as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from e


def _text_lines(path: Path, progress: ByteCounter) -> Iterator[tuple[int, str]]:
    """(line number, decoded line without newline); strict UTF-8 so a stray Latin-1 line is reported."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            progress.advance(len(raw))
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield n, _decode(raw, path, n).rstrip("\r\n")


class ByteCounter:
    """How many input bytes have been consumed, for a progress bar over the total input size."""

    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n


def _item_from_mapping(
    obj: dict[str, Any], text_column: str, path: Path, line: int, ordinal: int, path_category: str
) -> AuditItem:
    if "prompt" in obj and "subject" in obj and "target_new" in obj and text_column not in obj:
        return _item_from_han_prompt(obj, path, line, ordinal)
    text = obj.get(text_column)
    if not isinstance(text, str) or not text.strip():
        return AuditItem(ordinal, str(path), line, None, malformed=f"missing or blank {text_column!r}")
    is_record = text_column == "text" and set(obj) <= set(RECORD_FIELDS)
    record: Record | None = None
    if is_record:
        fields = {k: v for k, v in obj.items() if v is not None and v != ""}
        for k in JSON_FIELDS:
            if isinstance(fields.get(k), str):
                try:
                    fields[k] = json.loads(fields[k])
                except json.JSONDecodeError:
                    return AuditItem(ordinal, str(path), line, text.strip(), malformed=f"{k} is not JSON")
        try:
            record = Record(**fields)
        except (ValidationError, TypeError) as e:
            first = str(e).splitlines()
            reason = first[1].strip() if len(first) > 1 else first[0]
            return AuditItem(ordinal, str(path), line, text.strip(), malformed=f"invalid record: {reason}")
    attributes = obj.get("attributes")
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except json.JSONDecodeError:
            attributes = None
    text = text.strip()
    return AuditItem(
        ordinal,
        str(path),
        line,
        text,
        id=record.id if record else record_id(text),
        category=canonical_category(obj.get("category") or obj.get("type") or path_category),
        target=str(obj.get("target") or obj.get("org_grp_term") or ""),
        attribute=str(obj.get("attribute") or obj.get("att_term") or ""),
        attributes=attributes if isinstance(attributes, dict) else None,
        record=record,
    )


def _item_from_han_prompt(obj: dict[str, Any], path: Path, line: int, ordinal: int) -> AuditItem:
    """Han et al.'s causal-LM form: the prompt with the subject filled in, plus the attribute (`vdata.core.han`)."""
    han = parse_han_prompt(obj)
    if han is None:
        return AuditItem(
            ordinal, str(path), line, None, malformed="prompt/subject/target_new item is incomplete"
        )
    return AuditItem(
        ordinal,
        str(path),
        line,
        han.text,
        id=record_id(han.text),
        category=canonical_category(obj.get("type")) or category_from_path(path),
        target=han.target,
        attribute=han.attribute,
    )


def _item_from_list(obj: list[Any], path: Path, line: int, ordinal: int, category: str) -> AuditItem:
    """Han et al.'s raw form [sentence, target, attribute] (`vdata.core.han`)."""
    han = parse_han_triple(obj)
    if han is None:
        return AuditItem(ordinal, str(path), line, None, malformed="expected [sentence, target, attribute]")
    return AuditItem(
        ordinal,
        str(path),
        line,
        han.text,
        id=record_id(han.text),
        category=category,
        target=han.target,
        attribute=han.attribute,
    )


def _pick_text_column(columns: list[str], text_column: str | None, path: Path, line: int) -> str:
    if text_column:
        if text_column not in columns:
            raise UserError(
                f"{path}:{line}: no column {text_column!r}; columns are {', '.join(columns) or '(none)'} — "
                "pass the right one with --text-column"
            )
        return text_column
    for name in AUTO_TEXT_COLUMNS:
        if name in columns:
            return name
    if {"prompt", "subject", "target_new"} <= set(columns):
        return "text"  # Han et al.'s prompt form, rebuilt into a sentence per row
    raise UserError(
        f"{path}:{line}: no text column (looked for {', '.join(AUTO_TEXT_COLUMNS)}); columns are "
        f"{', '.join(columns) or '(none)'} — name the sentence column with --text-column"
    )


def items_at(reader: DatasetReader, ordinals: Sequence[int]) -> dict[int, AuditItem]:
    """The rows at these ordinals (positions in the reader's stream), reading only as far as the last."""
    wanted = set(ordinals)
    found: dict[int, AuditItem] = {}
    if not wanted:
        return found
    last = max(wanted)
    for position, item in enumerate(reader):
        if position in wanted:
            found[position] = item
        if position >= last:
            break
    return found


class DatasetReader:
    """Iterate the items of one dataset (one or more files), streaming where the format allows.

    JSON arrays are parsed whole (the format has no streaming form); every other format is read row by row.
    """

    def __init__(self, paths: list[Path], text_column: str | None = None) -> None:
        self.paths = expand_inputs(paths)
        self.text_column = text_column
        self.bytes = ByteCounter()
        self.total_bytes = sum(p.stat().st_size for p in self.paths)

    def __iter__(self) -> Iterator[AuditItem]:
        ordinal = 0
        for path in self.paths:
            n_in_file = 0
            start = self.bytes.done
            for item in self._read_file(path, ordinal):
                n_in_file += 1
                ordinal += 1
                yield item
            self.bytes.done = start + path.stat().st_size
            if n_in_file == 0:
                raise UserError(f"{path}: empty file (no rows); remove it from the inputs or fill it")

    def _read_file(self, path: Path, first_ordinal: int) -> Iterator[AuditItem]:
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            yield from self._read_text(path, first_ordinal)
        elif suffix in {".jsonl", ".ndjson"}:
            yield from self._read_jsonl(path, first_ordinal)
        elif suffix == ".json":
            yield from self._read_json_array(path, first_ordinal)
        elif suffix in {".csv", ".tsv"}:
            yield from self._read_csv(path, first_ordinal, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".parquet":
            yield from self._read_parquet(path, first_ordinal)
        else:
            raise UserError(
                f"{path}: unknown file type {suffix!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
            )

    def _read_text(self, path: Path, ordinal: int) -> Iterator[AuditItem]:
        category = category_from_path(path)
        for n, line in _text_lines(path, self.bytes):
            text = line.strip()
            if text:
                yield AuditItem(ordinal, str(path), n, text, id=record_id(text), category=category)
                ordinal += 1

    def _read_jsonl(self, path: Path, ordinal: int) -> Iterator[AuditItem]:
        column: str | None = None
        category = category_from_path(path)
        for n, line in _text_lines(path, self.bytes):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if column is None:
                    raise UserError(
                        f"{path}:{n}: not valid JSON ({e.msg}); is this really a JSONL file?"
                    ) from e
                yield AuditItem(ordinal, str(path), n, None, malformed=f"not valid JSON ({e.msg})")
                ordinal += 1
                continue
            if isinstance(obj, list):
                yield _item_from_list(obj, path, n, ordinal, category)
            elif isinstance(obj, dict):
                if column is None:
                    column = _pick_text_column(list(obj), self.text_column, path, n)
                yield _item_from_mapping(obj, column, path, n, ordinal, category)
            else:
                yield AuditItem(ordinal, str(path), n, None, malformed="expected a JSON object per line")
            ordinal += 1

    def _read_json_array(self, path: Path, ordinal: int) -> Iterator[AuditItem]:
        raw = path.read_bytes()
        if not raw.strip():
            return
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise UserError(
                f"{path}:{line}: not UTF-8 text; the file mixes encodings — re-encode it as UTF-8"
            ) from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise UserError(
                f"{path}:1: expected a JSON array of rows (or of [sentence, target, attribute] lists)"
            )
        category = category_from_path(path)
        column: str | None = None
        for n, obj in enumerate(data, 1):
            if isinstance(obj, list):
                yield _item_from_list(obj, path, n, ordinal, category)
            elif isinstance(obj, dict):
                if column is None:
                    column = _pick_text_column(list(obj), self.text_column, path, n)
                yield _item_from_mapping(obj, column, path, n, ordinal, category)
            elif isinstance(obj, str) and obj.strip():
                yield AuditItem(ordinal, str(path), n, obj.strip(), id=record_id(obj), category=category)
            else:
                yield AuditItem(ordinal, str(path), n, None, malformed="row is neither an object nor a list")
            ordinal += 1

    def _read_csv(self, path: Path, ordinal: int, delimiter: str) -> Iterator[AuditItem]:
        category = category_from_path(path)
        lines = (line + "\n" for _, line in _text_lines(path, self.bytes))
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        column = _pick_text_column(header, self.text_column, path, 1)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            n = reader.line_num
            if len(row) != len(header):
                yield AuditItem(
                    ordinal,
                    str(path),
                    n,
                    None,
                    malformed=f"{len(row)} fields but the header has {len(header)}",
                )
            else:
                yield _item_from_mapping(
                    dict(zip(header, row, strict=True)), column, path, n, ordinal, category
                )
            ordinal += 1

    def _read_parquet(self, path: Path, ordinal: int) -> Iterator[AuditItem]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise UserError(f"{path}: not a readable Parquet file ({e})") from e
        column = _pick_text_column(pf.schema_arrow.names, self.text_column, path, 1)
        category = category_from_path(path)
        n = 0
        for batch in pf.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                n += 1
                yield _item_from_mapping(row, column, path, n, ordinal, category)
                ordinal += 1
