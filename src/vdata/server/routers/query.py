"""GET /v1/query: one read-only SQL SELECT over the public views `records` and `stats`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from vdata.server import archive
from vdata.server.query import QueryRefused
from vdata.server.query_snapshot import latest_snapshot, run_duckdb
from vdata.server.responses import Format, json_response, table_response
from vdata.server.state import State

router = APIRouter()


@router.get("/v1/query", summary="Read-only SQL over the views `records` and `stats`")
def query(
    state: State,
    sql: Annotated[str, Query(description="One SELECT over records and stats")],
    format: Annotated[Format, Query()] = "json",
    engine: Annotated[
        Literal["live", "snapshot"],
        Query(
            description="live: the database now; snapshot: DuckDB over the latest snapshot's Parquet files"
        ),
    ] = "live",
) -> Response:
    settings = state.settings
    covers: dict[str, Any] = {}
    try:
        if engine == "snapshot":
            snapshot_id, watermark, files = latest_snapshot(settings.snapshots_dir)
            covers = {"snapshot": snapshot_id, "approved_until": watermark}
            result = run_duckdb(files, sql, settings.query_timeout_s, settings.query_row_limit)
        else:
            result = state.run_live_query(sql)
            # Once months were archived, the live tables hold only the rest: say which.
            coverage = state.read(archive.coverage)
            if coverage is not None:
                covers["coverage"] = coverage
    except QueryRefused as e:
        raise HTTPException(400, str(e)) from None
    headers = {"X-Truncated": "true"} if result.truncated else {}
    if "snapshot" in covers:
        headers["X-Snapshot"] = covers["snapshot"]
    if format == "json":
        return json_response(
            {
                "columns": result.columns,
                "rows": result.rows,
                "truncated": result.truncated,
                "row_limit": settings.query_row_limit,
                "elapsed_ms": round(result.elapsed_ms, 2),
                **covers,
            },
            headers=headers,
        )
    return table_response(result.columns, result.rows, format, headers)
