"""Rendering the pages: one Jinja2 environment over server/templates, autoescaping on for everything."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_FORM_BYTES = 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


@functools.cache
def environment() -> jinja2.Environment:
    # autoescape=True for every template, not only *.html: contributed text is hostile input.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)


def page(name: str, context: dict[str, Any], status: int = 200, *, private: bool = False) -> HTMLResponse:
    """The template `name` rendered; `private`: a moderator's page, never stored by a cache."""
    headers = {"Cache-Control": "no-store"} if private else None
    return HTMLResponse(environment().get_template(name).render(context), status, headers=headers)


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
