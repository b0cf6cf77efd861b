"""/docs: Swagger UI with its script, style sheet and favicon served by the server itself (from the
swagger-ui-bundle-v2 package), so the docs work offline and tell no CDN who reads them. The page is a
template started by a script file, so /docs runs no inline script either."""

from __future__ import annotations

from fastapi import Response
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from vdata.server.pages.render import render

ASSETS = "/docs/assets"


async def swagger_ui(request: Request) -> Response:
    config = {
        "url": request.app.openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
        "validatorUrl": None,
    }
    context = {"title": f"{request.app.title} - Swagger UI", "assets": ASSETS, "config": config}
    return render(request, "api_docs.html", context)


def docs_routes() -> list[BaseRoute]:
    """/docs and the Swagger UI files under /docs/assets (started by /static/swagger-init.js)."""
    # PyPI swagger-ui-bundle-v2: Swagger UI 5, which renders the OpenAPI 3.1 that FastAPI writes.
    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/docs", swagger_ui, include_in_schema=False),
        Mount(ASSETS, app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets"),
    ]
