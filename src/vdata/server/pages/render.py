"""Shared rendering of the reader pages: one Jinja2 environment (autoescape always on), the base context
every page gets, and the small helpers the templates use.

Contributed text reaches the templates only as template variables, which Jinja2 escapes; no template
marks a contributed value `safe`. Inline SVG (the charts) is made by templates too, from numbers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import markupsafe
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine

from vdata import __version__
from vdata.server import archive, browse
from vdata.server.browse import TtlCache
from vdata.server.state import ServerState

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

NAV: tuple[tuple[str, str], ...] = (
    ("/", "Home"),
    ("/records", "Records"),
    ("/sql", "SQL"),
    ("/about", "About"),
    ("/moderate", "Moderate"),
    ("/docs", "API"),
)


def query_url(path: str, params: Mapping[str, Any]) -> str:
    """`path?params`, leaving out empty values; list values repeat the key (category=a&category=b)."""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            pairs.extend((key, v) for v in value if v not in (None, ""))
        elif value not in (None, ""):
            pairs.append((key, value))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def bar_width(value: int, values: Sequence[int], full: int = 120) -> int:
    """Width in px of a bar for `value` beside the largest of `values` (at least 1 px when non-zero)."""
    top = max(values, default=0)
    return max(1, round(full * value / top)) if top and value else 0


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
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: contributed text is hostile
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(nav=NAV, version=__version__, query_url=query_url, bar_width=bar_width)
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["reveal_bidi"] = reveal_bidi
    return env


def render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    state: ServerState = request.app.state.vdata
    pages: PageCaches | None = getattr(request.app.state, "pages", None)
    coverage = pages.coverage(state.read_engine) if pages is not None else None
    page = (
        environment()
        .get_template(template)
        .render(
            {
                "path": request.url.path,
                "donate_url": state.settings.donate_url,
                "coverage": coverage,
                **context,
            }
        )
    )
    return HTMLResponse(page, status_code=status_code)


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status_code)


class PageCaches:
    """The pages' cached counts, one set per server (held on `app.state.pages`)."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self._facets = TtlCache(ttl_s=ttl_s)
        self._overview = TtlCache(ttl_s=ttl_s, size=1)
        self._coverage = TtlCache(ttl_s=ttl_s, size=1)

    def facets(self, engine: Engine, filters: browse.Filters) -> dict[str, Any]:
        result: dict[str, Any] = self._facets.get(filters, lambda: browse.facet_counts(engine, filters))
        return result

    def cached_facets(self, filters: browse.Filters) -> bool:
        return self._facets.ttl_s > 0 and self._facets.peek(filters) is not None

    def overview(self, engine: Engine) -> dict[str, Any]:
        result: dict[str, Any] = self._overview.get("overview", lambda: browse.overview(engine))
        return result

    def coverage(self, engine: Engine) -> dict[str, Any] | None:
        """Which months the live table holds, once any was archived (every page says so)."""
        result: dict[str, Any] | None = self._coverage.get("coverage", lambda: archive.coverage(engine))
        return result

    def warm(self, engine: Engine) -> None:
        """Compute the counts every reader starts from (home, the unfiltered /records), so that the first
        readers after a start do not wait for them."""
        self.overview(engine)
        self.facets(engine, browse.Filters())


def caches(request: Request) -> PageCaches:
    found: PageCaches = request.app.state.pages
    return found
