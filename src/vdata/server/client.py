"""Client side of the public dataset server: `vdata push` and `vdata pull`.

Push validates records locally first (the server's rules are the same `Record` model), sends them in
batches with retries, and reports what was accepted, what was a duplicate and what was rejected and why.
Pull streams pages (or one SQL result) into a temp file beside OUT and renames it over OUT only when
everything arrived, so a failure mid-way never leaves a truncated OUT.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vdata.core.errors import UserError
from vdata.core.io import atomic_path, iter_raw_rows
from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.records import PUBLIC_COLUMNS, Record, check_publishable, file_row_values, parse_record
from vdata.core.retry import backoff_delay, parse_retry_after

DEFAULT_BATCH = 500
MAX_ATTEMPTS = 5
PULL_PAGE = 5000


class ServerUnreachable(UserError):
    """The server could not be reached (connection refused, DNS, timeouts) after all retries."""


def resolve_server(server: str | None) -> str:
    """The server URL from --server, else env VDATA_SERVER, else the config file; UserError if none."""
    if not server:
        from vdata.core.config import load_user_config

        server = load_user_config().server
    if not server:
        raise UserError(
            'no server given; pass --server URL, set VDATA_SERVER, or add server = "URL" to the config file'
        )
    if not server.startswith(("http://", "https://")):
        raise UserError(f"server URL {server!r} must start with http:// or https://")
    return server.rstrip("/")


@dataclass
class PushReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    # (where, reason): `where` is "file:line" for local rejections, or the record id for server rejections.
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # Full URLs of the contribution batches stored (each shows its records' status and the automatic report).
    contributions: list[str] = field(default_factory=list)


def _request_with_retries(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; retry connection errors, 429 and 5xx with full-jitter backoff, never sooner than
    the server's Retry-After (at most a minute)."""
    last_error: Exception | None = None
    for attempt in range(MAX_ATTEMPTS):
        response: httpx.Response | None = None
        try:
            response = client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError) as e:
            last_error = e
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            last_error = None
        if attempt + 1 < MAX_ATTEMPTS:
            retry_after = (
                parse_retry_after(response.headers.get("retry-after")) if response is not None else None
            )
            sleep(backoff_delay(attempt, retry_after, base=0.5, cap=8.0, max_retry_after=60.0))
    if last_error is not None:
        raise ServerUnreachable(
            f"cannot reach the vdata server at {client.base_url} ({type(last_error).__name__}: {last_error}); "
            "check the URL (--server, VDATA_SERVER or the config file) and that the server is running"
        )
    assert response is not None
    raise UserError(f"server at {client.base_url} kept answering {response.status_code}: {_reason(response)}")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)[:300]
    return json.dumps(body)[:300]


def _server_batch_limit(client: httpx.Client, sleep: Callable[[float], None]) -> int:
    response = _request_with_retries(client, "GET", "/v1/", sleep=sleep)
    if response.status_code == 200:
        return int(response.json().get("limits", {}).get("batch_size", DEFAULT_BATCH))
    return DEFAULT_BATCH


def validate_rows(path: Path) -> tuple[list[Record], list[tuple[str, str]]]:
    """Read FILE and check every row by the public server's rules (`check_publishable`; which strategy
    names it accepts is the server's to say); invalid rows are reported as ("file:line", reason)."""
    records: list[Record] = []
    rejected: list[tuple[str, str]] = []
    for line, row in iter_raw_rows(path):
        try:
            records.append(check_publishable(parse_record(file_row_values(row))))
        except ValueError as e:
            rejected.append((f"{path}:{line}", str(e)))
    return records, rejected


def push_records(
    records: Sequence[Record],
    server: str,
    *,
    contributor: str | None = None,
    batch_size: int | None = None,
    timeout: float = 30.0,
    progress: ProgressFactory = no_progress,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """PUT records to SERVER in batches. Records the server rejects are reported and the rest re-sent.

    Raises ServerUnreachable when the server cannot be reached; records already sent stay on the server
    (each batch is its own transaction, and re-sending is idempotent).
    """
    report = PushReport()
    params = {"contributor": contributor} if contributor else {}
    with (
        httpx.Client(base_url=server, timeout=timeout) as client,
        progress("uploading", len(records), "records") as task,
    ):
        size = batch_size or min(DEFAULT_BATCH, _server_batch_limit(client, sleep))
        for start in range(0, len(records), size):
            batch = [r.to_dict() for r in records[start : start + size]]
            while batch:
                response = _request_with_retries(
                    client, "PUT", "/v1/records", json=batch, params=params, sleep=sleep
                )
                if response.status_code == 200:
                    body = response.json()
                    report.accepted.extend(body["accepted"])
                    report.duplicates.extend(body["duplicates"])
                    if isinstance(body.get("contribution"), dict):
                        report.contributions.append(server + body["contribution"]["url"])
                    break
                if response.status_code == 422 and isinstance(response.json().get("errors"), list):
                    # The server stored nothing; drop the records it named and send the rest again.
                    bad = {e["index"]: e["reason"] for e in response.json()["errors"]}
                    report.rejected.extend((batch[i].get("id", f"#{i}"), reason) for i, reason in bad.items())
                    batch = [r for i, r in enumerate(batch) if i not in bad]
                    continue
                raise UserError(f"server refused the upload ({response.status_code}): {_reason(response)}")
            task.update(completed=min(start + size, len(records)))
    return report


# ---------------------------------------------------------------------------------------------- pull


def _format_row_json(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _format_row_text(row: dict[str, Any]) -> str:
    value = row["text"] if "text" in row else "\t".join("" if v is None else str(v) for v in row.values())
    return str(value).replace("\r", " ").replace("\n", " ") + "\n"


class _CsvWriter:
    def __init__(self) -> None:
        self.header_written = False

    def __call__(self, row: dict[str, Any]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        if not self.header_written:
            writer.writerow(list(row))
            self.header_written = True
        writer.writerow(["" if v is None else v for v in row.values()])
        return buf.getvalue()


def _iter_record_pages(
    client: httpx.Client,
    filters: dict[str, Any],
    page_size: int,
    on_page: Callable[[int], None] | None,
    sleep: Callable[[float], None],
) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**filters, "limit": page_size, "format": "json"}
        if cursor:
            params["cursor"] = cursor
        response = _request_with_retries(client, "GET", "/v1/records", params=params, sleep=sleep)
        if response.status_code != 200:
            raise UserError(f"server refused the pull ({response.status_code}): {_reason(response)}")
        body = response.json()
        yield from body["records"]
        if on_page:
            on_page(len(body["records"]))
        cursor = body.get("next_cursor")
        if not cursor:
            return


def _query_rows(client: httpx.Client, sql: str, engine: str = "live") -> tuple[list[dict[str, Any]], bool]:
    """Run one read-only SQL query (`engine` live or snapshot); returns its rows and whether the server cut
    them at its row limit."""
    params = {"sql": sql, "format": "json", "engine": engine}
    response = _request_with_retries(client, "GET", "/v1/query", params=params)
    if response.status_code != 200:
        raise UserError(f"server refused the query ({response.status_code}): {_reason(response)}")
    body = response.json()
    columns = body["columns"]
    return [dict(zip(columns, values, strict=True)) for values in body["rows"]], bool(body.get("truncated"))


@dataclass
class PullResult:
    rows: int
    truncated: bool = False


def pull(
    out: Path,
    server: str,
    *,
    fmt: str = "json",
    sql: str | None = None,
    categories: Iterable[str] = (),
    strategy: str | None = None,
    provider: str | None = None,
    q: str | None = None,
    page_size: int = PULL_PAGE,
    timeout: float = 60.0,
    on_page: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    engine: str = "live",
) -> PullResult:
    """Download approved records (or an SQL result, from the live database or, with engine="snapshot",
    DuckDB over the latest snapshot) into OUT atomically."""
    formatter: Callable[[dict[str, Any]], str]
    if fmt == "json":
        formatter = _format_row_json
    elif fmt == "text":
        formatter = _format_row_text
    elif fmt == "csv":
        formatter = _CsvWriter()
    else:
        raise UserError(f"unknown format {fmt!r}; use -j (JSON lines), -t (text) or -c (CSV)")
    filters: dict[str, Any] = {}
    if categories:
        filters["category"] = list(categories)
    for key, value in (("strategy", strategy), ("provider", provider), ("q", q)):
        if value:
            filters[key] = value
    count = 0
    truncated = False
    with httpx.Client(base_url=server, timeout=timeout) as client, atomic_path(out) as tmp:
        rows: Iterable[dict[str, Any]]
        if sql:
            rows, truncated = _query_rows(client, sql, engine)
        else:
            rows = _iter_record_pages(client, filters, page_size, on_page, sleep)
        with tmp.open("w", encoding="utf-8", newline="") as f:
            for row in rows:
                f.write(formatter(row))
                count += 1
            if count == 0 and fmt == "csv" and not sql:
                f.write(",".join(PUBLIC_COLUMNS) + "\n")
    return PullResult(count, truncated)
