"""The reader pages of the public dataset: `/` (home), `/records` (browse), `/records/{id}` (permalink),
`/sql` (read-only SQL console), and the static files they use, served by the server itself."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from vdata.server.pages import home, record, records, sql
from vdata.server.pages.render import STATIC


def page_routes() -> list[BaseRoute]:
    return [
        Route("/", home.home_page, include_in_schema=False),
        Route("/records", records.records_page, include_in_schema=False),
        Route("/records/{record_id}", record.record_page, include_in_schema=False),
        Route("/sql", sql.sql_page, include_in_schema=False),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
