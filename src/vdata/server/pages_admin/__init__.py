"""The moderator and transparency pages: /signin, /signout, /moderate, /about (server-rendered HTML)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import BaseRoute

from vdata.server.auth import new_signin_limiter
from vdata.server.pages_admin import about, moderate, signin


def admin_page_routes() -> list[BaseRoute]:
    """The pages' routes; each app gets its own sign-in rate limiter."""
    router = APIRouter(include_in_schema=False)
    signin.add_routes(router, new_signin_limiter())
    moderate.add_routes(router)
    about.add_routes(router)
    return list(router.routes)
