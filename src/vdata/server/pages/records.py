"""`/records`: approved records as a sortable, filterable, searchable table with facet counts.

Every state of the page is its URL (filters, search, sort, page cursor), so any view can be shared. The
page is plain HTML forms and links: it works with JavaScript disabled. `format=json` and `format=csv`
give the same rows as data.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from vdata.server import browse
from vdata.server.pages.render import caches, error_page, query_url, render
from vdata.server.responses import json_response, table_response

PAGE_SIZES = (25, 50, 100, 200)
MAX_VALUE = 200  # characters of one filter value (the longest stored category/provider)
FORMATS = ("html", "json", "csv")


class BadFilter(ValueError):
    """A query parameter of /records that cannot be used; the message names it and the fix."""


def _one(params: QueryParams, name: str) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > MAX_VALUE:
        raise BadFilter(f"{name} is longer than {MAX_VALUE} characters")
    return value or None


def _day(params: QueryParams, name: str) -> date | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name}={value!r} is not a date; use YYYY-MM-DD") from None


def parse(params: QueryParams) -> tuple[browse.PageRequest, str, dict[str, Any]]:
    """(page request, format, the URL parameters that describe this view) from a /records query string."""
    categories = tuple(v.strip() for v in params.getlist("category") if v.strip())[:50]
    if any(len(c) > MAX_VALUE for c in categories):
        raise BadFilter(f"category is longer than {MAX_VALUE} characters")
    filters = browse.Filters(
        category=categories,
        strategy=_one(params, "strategy"),
        provider=_one(params, "provider"),
        contributor=_one(params, "contributor"),
        date_from=_day(params, "from"),
        date_to=_day(params, "to"),
        q=_one(params, "q"),
    )
    sort = _one(params, "sort") or "seq"
    if sort not in browse.SORTABLE:
        raise BadFilter(f"cannot sort by {sort!r}; sortable: {', '.join(browse.SORTABLE)}")
    direction = _one(params, "dir") or "asc"
    if direction not in ("asc", "desc"):
        raise BadFilter("dir must be asc or desc")
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise BadFilter("limit must be a number") from None
    if limit not in PAGE_SIZES:
        raise BadFilter(f"limit must be one of {', '.join(map(str, PAGE_SIZES))}")
    fmt = _one(params, "format") or "html"
    if fmt not in FORMATS:
        raise BadFilter("format must be html, json or csv")
    after, before = _one(params, "after"), _one(params, "before")
    for cursor in (after, before):
        if cursor is not None:
            try:
                browse.decode_cursor(cursor)
            except ValueError:
                raise BadFilter("invalid page cursor; follow the Next/Previous links") from None
    request = browse.PageRequest(filters, sort, direction == "desc", after, None if after else before, limit)
    view = {
        "q": filters.q,
        "category": list(categories),
        "strategy": filters.strategy,
        "provider": filters.provider,
        "contributor": filters.contributor,
        "from": filters.date_from.isoformat() if filters.date_from else None,
        "to": filters.date_to.isoformat() if filters.date_to else None,
        "sort": None if sort == "seq" else sort,
        "dir": None if direction == "asc" else direction,
        "limit": None if limit == 50 else limit,
    }
    return request, fmt, view


async def records_page(request: Request) -> Response:
    try:
        page_request, fmt, view = parse(request.query_params)
    except BadFilter as e:
        if (request.query_params.get("format") or "html") in ("json", "csv"):
            return json_response({"detail": str(e)}, 400)
        return error_page(request, 400, "Cannot show these records", str(e))
    state = request.app.state.vdata
    engine = state.read_engine
    # A local SQLite page takes well under a millisecond: cheaper inline than a thread hop (as in the API).
    if state.settings.is_sqlite:
        page = browse.fetch_page(engine, page_request)
    else:
        page = await run_in_threadpool(browse.fetch_page, engine, page_request)
    if fmt == "json":
        return json_response({"records": page.rows, "next_cursor": page.next_cursor})
    if fmt == "csv":
        headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
        return table_response(page.columns, page.rows, "csv", headers)
    counts_cache = caches(request)
    if counts_cache.cached_facets(
        page_request.filters
    ):  # a hit returns at once (a stale one refreshes aside)
        counts = counts_cache.facets(engine, page_request.filters)
    else:
        counts = await run_in_threadpool(counts_cache.facets, engine, page_request.filters)
    cursor = {"after": request.query_params.get("after"), "before": request.query_params.get("before")}
    return render(
        request,
        "records.html",
        {
            "page": page,
            "counts": counts,
            "view": view,
            "sortable": browse.SORTABLE,
            "page_sizes": PAGE_SIZES,
            "here": query_url("/records", {**view, **cursor}),
            "json_url": query_url("/records", {**view, **cursor, "format": "json"}),
            "csv_url": query_url("/records", {**view, **cursor, "format": "csv"}),
            "api_url": _api_url(view),
        },
    )


def _api_url(view: dict[str, Any]) -> str | None:
    """The same filter on GET /v1/records, when that API can express it (it has no contributor, date or
    word-search filter, and sorts only by insertion order)."""
    if any(view[k] for k in ("contributor", "from", "to", "q", "sort", "dir")):
        return None
    return query_url("/v1/records", {k: view[k] for k in ("category", "strategy", "provider")})
