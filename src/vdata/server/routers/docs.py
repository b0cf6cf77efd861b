"""/docs: Swagger UI with its script, style sheet and favicon served by the server itself (from the
swagger-ui-bundle-v2 package), so the docs work offline and tell no CDN who reads them."""

from __future__ import annotations

from fastapi import Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"


async def swagger_ui(request: Request) -> Response:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


async def oauth2_redirect(_request: Request) -> Response:
    return get_swagger_ui_oauth2_redirect_html()


def docs_routes() -> list[BaseRoute]:
    """/docs, /docs/oauth2-redirect and the Swagger UI files under /docs/assets."""
    # PyPI swagger-ui-bundle-v2: Swagger UI 5, which renders the OpenAPI 3.1 that FastAPI writes.
    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/docs", swagger_ui, include_in_schema=False),
        Route("/docs/oauth2-redirect", oauth2_redirect, include_in_schema=False),
        Mount(ASSETS, app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets"),
    ]
