"""Response bodies of the server: JSON (orjson), CSV and text lines, streamed when large."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import orjson
from fastapi.responses import Response, StreamingResponse

Format = Literal["json", "csv", "text"]
STREAM_THRESHOLD = 500  # rows; larger bodies are streamed


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    return str(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default)


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status_code=status_code, media_type="application/json", headers=headers)


def csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def text_line(row: dict[str, Any] | Sequence[Any]) -> str:
    if isinstance(row, dict) and "text" in row:
        value = str(row["text"])
    else:
        value = "\t".join(
            "" if v is None else str(v) for v in (row.values() if isinstance(row, dict) else row)
        )
    return value.replace("\r", " ").replace("\n", " ") + "\n"


def _chunks(lines: Iterable[bytes], size: int = 256) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _body(parts: Iterable[bytes], media_type: str, headers: dict[str, str], stream: bool) -> Response:
    if stream:
        return StreamingResponse(_chunks(parts), media_type=media_type, headers=headers)
    return Response(b"".join(parts), media_type=media_type, headers=headers)


def table_response(
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]] | Sequence[Sequence[Any]],
    fmt: Literal["csv", "text"],
    headers: dict[str, str],
) -> Response:
    """Rows (dicts or value sequences) as CSV with a header, or as text lines; streamed when large."""
    stream = len(rows) > STREAM_THRESHOLD
    if fmt == "csv":
        lines = (csv_line(r.values() if isinstance(r, dict) else r).encode() for r in rows)
        return _body(_prepend(csv_line(columns).encode(), lines), "text/csv; charset=utf-8", headers, stream)
    return _body((text_line(r).encode() for r in rows), "text/plain; charset=utf-8", headers, stream)


def json_page_response(rows: Sequence[bytes | str], next_cursor: str | None) -> Response:
    """`{"records": [...], "next_cursor": ...}` from rows already serialised (bytes, or JSON text from the
    database); streamed when large. The next page's cursor is also in the X-Next-Cursor header."""
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    json_rows = [r.encode() if isinstance(r, str) else r for r in rows]
    tail = b'],"next_cursor":' + dumps(next_cursor) + b"}"
    if len(json_rows) <= STREAM_THRESHOLD:
        return Response(
            b'{"records":[' + b",".join(json_rows) + tail, media_type="application/json", headers=headers
        )

    def parts() -> Iterator[bytes]:
        yield b'{"records":['
        for i in range(0, len(json_rows), 256):
            yield (b"," if i else b"") + b",".join(json_rows[i : i + 256])
        yield tail

    return StreamingResponse(parts(), media_type="application/json", headers=headers)


def page_response(
    rows: list[dict[str, Any]], next_cursor: str | None, fmt: Format, columns: tuple[str, ...]
) -> Response:
    """One page of records in `fmt` (JSON pages carry next_cursor; CSV and text only the header)."""
    if fmt == "json":
        return json_page_response([dumps(r) for r in rows], next_cursor)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    return table_response(columns, rows, fmt, headers)
