"""The moderator pages' rendering (through the pages' one Jinja2 environment) and form reading."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from vdata.server.pages.render import render

MAX_FORM_BYTES = 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def page(
    request: Request, name: str, context: dict[str, Any], status: int = 200, *, private: bool = False
) -> HTMLResponse:
    """The template `name` rendered in the pages' one environment (layout, navigation, autoescape);
    `private`: a moderator's page, never stored by a cache."""
    response = render(request, name, context, status)
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (what the pages' forms send), as name -> values."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise HTTPException(415, f"send the form as {FORM_TYPE}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20_000)
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPException(400, f"unreadable form: {e}") from None


def first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""
