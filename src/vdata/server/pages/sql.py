"""`/sql`: a read-only SQL console over the public views, through the machinery of GET /v1/query (the
same parse check, read-only execution, time and row limits). Each query is a URL: `/sql?q=SELECT...`.
The form is a plain textarea and submit button; static/sql.js only adds Ctrl+Enter and example buttons."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from vdata.server.pages.render import render
from vdata.server.query import MAX_SQL_CHARS, QueryRefused, QueryResult
from vdata.server.state import ServerState

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Records per category", "SELECT category, COUNT(*) AS n FROM records GROUP BY category ORDER BY n DESC"),
    (
        "Providers and models",
        "SELECT provider, model, COUNT(*) AS n FROM records GROUP BY provider, model ORDER BY n DESC",
    ),
    ("Status of all contributions", "SELECT status, SUM(n) AS n FROM stats GROUP BY status"),
    (
        "Sentences about nurses",
        "SELECT id, text, category FROM records WHERE lower(text) LIKE '%nurse%' LIMIT 20",
    ),
    (
        "Top contributors",
        "SELECT contributor, COUNT(*) AS n FROM records GROUP BY contributor ORDER BY n DESC LIMIT 10",
    ),
)
SHOWN_ROWS = 1000  # rows drawn in the page; the downloads carry up to the server's row limit


async def sql_page(request: Request) -> HTMLResponse:
    state: ServerState = request.app.state.vdata
    sql = request.query_params.get("q") or ""
    result: QueryResult | None = None
    refused: str | None = None
    if sql.strip():
        try:
            result = await run_in_threadpool(state.run_live_query, sql)
        except QueryRefused as e:
            refused = str(e)
    return render(
        request,
        "sql.html",
        {
            "sql": sql,
            "result": result,
            "shown": result.rows[:SHOWN_ROWS] if result else [],
            "shown_limit": SHOWN_ROWS,
            "refused": refused,
            "examples": [(title, "/sql?" + urlencode({"q": q}), q) for title, q in EXAMPLES],
            "row_limit": state.settings.query_row_limit,
            "timeout_s": state.settings.query_timeout_s,
            "max_chars": MAX_SQL_CHARS,
            "share_url": "/sql?" + urlencode({"q": sql}) if sql.strip() else None,
            "json_url": "/v1/query?" + urlencode({"sql": sql, "format": "json"}) if result else None,
            "csv_url": "/v1/query?" + urlencode({"sql": sql, "format": "csv"}) if result else None,
        },
        status_code=400 if refused else 200,
    )
