"""The API docs page (/docs) works offline: Swagger UI's assets come from the server itself."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Request, expect


def test_api_docs_render_offline(page: Page, live_server: str, screenshots_dir: Path) -> None:
    requested: list[str] = []
    failed: list[str] = []

    def _record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", _record)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{live_server}/docs")
    # Swagger UI drew the operations from the server's OpenAPI schema.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("vdata")
    expect(page.locator(".opblock-summary-path").filter(has_text="/v1/records").first).to_be_visible()
    hosts = {urlsplit(url).netloc for url in requested if url.startswith("http")}
    assert hosts == {urlsplit(live_server).netloc}, f"/docs reached outside the server: {sorted(hosts)}"
    assert not failed, f"requests failed: {failed}"
    page.screenshot(path=str(screenshots_dir / "api-docs.png"))
