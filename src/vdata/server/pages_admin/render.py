"""Rendering the pages: one Jinja2 environment over server/templates, autoescaping on for everything."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
import markupsafe
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_FORM_BYTES = 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


# Bidirectional controls (embeddings, overrides, isolates) can make contributed text read differently
# from what it is; moderators see each one as a visible mark instead of its effect.
BIDI_CONTROLS = {
    "\u202a": "LRE",
    "\u202b": "RLE",
    "\u202c": "PDF",
    "\u202d": "LRO",
    "\u202e": "RLO",
    "\u2066": "LRI",
    "\u2067": "RLI",
    "\u2068": "FSI",
    "\u2069": "PDI",
    "\u200e": "LRM",
    "\u200f": "RLM",
}
_BIDI = re.compile("[" + "".join(BIDI_CONTROLS) + "]")


def reveal_bidi(value: object) -> markupsafe.Markup:
    """Escaped text with each bidirectional control shown as a visible tag such as [RLO]."""
    escaped = str(markupsafe.escape(value))
    return markupsafe.Markup(
        _BIDI.sub(lambda m: f'<span class="adm-bidi">[{BIDI_CONTROLS[m.group()]}]</span>', escaped)
    )


@functools.cache
def environment() -> jinja2.Environment:
    # autoescape=True for every template, not only *.html: contributed text is hostile input.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    env.filters["reveal_bidi"] = reveal_bidi
    return env


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
