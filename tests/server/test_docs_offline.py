"""/docs works offline: Swagger UI's script, style sheet and favicon come from the server itself."""

from __future__ import annotations

import re

from .conftest import Server


def test_docs_reference_only_local_assets(seeded_server: Server) -> None:
    page = seeded_server.http.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assert links and all(link.startswith("/") for link in links), links
    assert "http://" not in page.text and "https://" not in page.text, "no CDN, no external favicon"
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    for link in links:
        asset = seeded_server.http.get(link)
        assert asset.status_code == 200 and asset.content, link
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "/docs/assets/{path}" not in seeded_server.http.get("/openapi.json").json()["paths"]
