"""GET /v1/query: one read-only SQL SELECT over the public views `records` and `stats`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from vdata.server.query import QueryRefused, check_sql, run_postgres, run_sqlite
from vdata.server.responses import Format, json_response, table_response
from vdata.server.state import State

router = APIRouter()


@router.get("/v1/query", summary="Read-only SQL over the views `records` and `stats`")
def query(
    state: State,
    sql: Annotated[str, Query(description="One SELECT over records and stats")],
    format: Annotated[Format, Query()] = "json",
) -> Response:
    settings = state.settings
    try:
        check_sql(sql, "sqlite" if settings.is_sqlite else "postgres")
        if settings.is_sqlite:
            path = state.engine.url.database or ""
            result = run_sqlite(path, sql, settings.query_timeout_s, settings.query_row_limit)
        else:
            result = run_postgres(
                state.engine.raw_connection,
                sql,
                settings.query_timeout_s,
                settings.query_row_limit,
                state.query_role,
            )
    except QueryRefused as e:
        raise HTTPException(400, str(e)) from None
    headers = {"X-Truncated": "true"} if result.truncated else {}
    if format == "json":
        return json_response(
            {
                "columns": result.columns,
                "rows": result.rows,
                "truncated": result.truncated,
                "row_limit": settings.query_row_limit,
                "elapsed_ms": round(result.elapsed_ms, 2),
            },
            headers=headers,
        )
    return table_response(result.columns, result.rows, format, headers)
