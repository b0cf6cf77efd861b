"""Pure ASGI middleware of the server, outermost first: access log, security headers, request guard,
PUT rate limit.

Each runs before routing and body parsing, for every route, so no endpoint repeats these checks.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Collection

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vdata.core.ratelimit import KeyedTokenBuckets

access_log = logging.getLogger("vdata.access")


async def refuse(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answer `{"detail": ...}` with `status` without calling the app (as FastAPI's HTTPException would)."""
    body = orjson.dumps({"detail": detail})
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """One JSON line per request on the `vdata.access` logger."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                            "client": client[0] if client else None,
                        }
                    )
                )


class RequestGuard:
    """The body-size limit, for every endpoint and in one place, and no NUL in query strings.

    A declared Content-Length over the limit gets 413 before the app runs; otherwise the body is
    counted as the app reads it (chunked bodies declare no length), and reading past the limit raises
    HTTPException(413), which the app answers like any other. A NUL in the query string gets 400 (PostgreSQL text cannot hold one).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b""):
            await refuse(send, 400, "query parameters must not contain NUL characters (%00)")
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                await refuse(
                    send, 413, f"body of {int(value)} bytes exceeds the limit of {self.max_body_bytes}"
                )
                return
        if scope["method"] in ("GET", "HEAD"):  # no endpoint reads a GET body: spare the hot path the wrapper
            await self.app(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, f"body exceeds the limit of {self.max_body_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


class RateLimit:
    """Requests with one of `methods` to one of `paths`, per client address, through `limiter`; over the
    rate they get 429 with Retry-After before the app reads anything."""

    def __init__(
        self, app: ASGIApp, limiter: KeyedTokenBuckets, methods: Collection[str], paths: Collection[str]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.methods, self.paths = frozenset(methods), frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods and scope["path"] in self.paths:
            address = scope.get("client")
            client = address[0] if address else "unknown"
            wait = self.limiter.take(client)
            if wait > 0:
                await refuse(
                    send,
                    429,
                    f"too many uploads from {client}; retry in {math.ceil(wait)} s",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
                return
        await self.app(scope, receive, send)


# The pages load script, style and images from the server only, and no inline script or style can run:
# contributed text that slipped through escaping still could not execute.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI (/docs) runs no inline script either (static/swagger-init.js starts it), but its React
# components set style attributes.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


class SecurityHeaders:
    """Content-Security-Policy, X-Content-Type-Options, Referrer-Policy and X-Frame-Options on every
    response, unless the app set them itself; /docs gets the looser policy Swagger UI needs."""

    def __init__(self, app: ASGIApp, docs_prefix: str = "/docs") -> None:
        self.app = app
        self.docs_prefix = docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        docs = path == self.docs_prefix or path.startswith(self.docs_prefix + "/")
        added = [
            (b"content-security-policy", (DOCS_POLICY if docs else PAGE_POLICY).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_wrapper)
