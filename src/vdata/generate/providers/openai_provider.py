"""`openai`: the official async SDK. `base_url` points it at any OpenAI-compatible server.

The SDK's client is always what resolves the configuration: the API key, `base_url` (or the
`OPENAI_BASE_URL` variable), organisation and project headers from `OPENAI_ORG_ID`/`OPENAI_PROJECT_ID`,
its User-Agent and platform headers. Two ways of sending the request (option `backend`):

* `aiohttp` (`auto` picks it when aiohttp is installed): the same POST, with exactly the headers the SDK
  would send, on one aiohttp session. The SDK's request path builds httpx request and response objects
  around every call (URL parsing, header normalisation, option models), about 1 ms of CPU per request;
  at hundreds of requests per second that, not the network, limits throughput (bench/gen_throughput.py).
* `sdk`: the SDK's own request path (`AsyncOpenAI.post`) with its httpx transport, for anyone who must
  go through it (custom `http_client` hooks, proxies configured the httpx way).

Either way the SDK's own retries are off (the engine retries, with jitter and Retry-After), the body is
serialised once and the reply parsed as plain JSON (no pydantic response models).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import Any

from vdata.core.retry import parse_retry_after
from vdata.generate.providers.base import (
    Completion,
    Message,
    Provider,
    ProviderError,
    ProviderOptions,
    ProviderSpec,
    redact,
    register_provider,
)


def _json_codec() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    try:
        import orjson

        return orjson.loads, orjson.dumps
    except ImportError:
        return json.loads, lambda obj: json.dumps(obj, ensure_ascii=False).encode()


_loads, _dumps = _json_codec()
_JSON_HEADERS = {"Content-Type": "application/json"}
RETRYABLE_STATUS = (408, 409, 425, 429)


def choose_transport(backend: str = "auto") -> str:
    """`aiohttp` or `sdk` for an options `backend` value (`auto`: aiohttp when installed)."""
    if backend == "sdk":
        return "sdk"
    has_aiohttp = importlib.util.find_spec("aiohttp") is not None
    if backend == "aiohttp" and not has_aiohttp:
        from vdata.core.errors import UserError

        raise UserError("backend 'aiohttp' needs the aiohttp package: pip install aiohttp (or use 'sdk')")
    return "aiohttp" if has_aiohttp else "sdk"


def _env_proxy(url: str) -> str | None:
    """The proxy for `url` from HTTP(S)_PROXY / NO_PROXY, as the SDK's httpx client would use it.

    Looked up once: aiohttp's own `trust_env` repeats the lookup (environment and ~/.netrc) on every
    request, which tripled the client's CPU time per request.
    """
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _status_error(status: int, body: bytes, retry_after: str | None, key: str) -> ProviderError:
    """The error for a non-2xx reply: the server's own message when it sent one (OpenAI's error shape)."""
    message = body[:300].decode("utf-8", "replace")
    try:
        err = _loads(body).get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            message = err["message"][:300]
        elif isinstance(err, str):
            message = err[:300]
    except (ValueError, AttributeError):
        pass
    hint = " (check the API key)" if status in (401, 403) else ""
    return ProviderError(
        redact(f"HTTP {status}: {message}{hint}", key),
        retryable=status in RETRYABLE_STATUS or status >= 500,
        status=status,
        retry_after=parse_retry_after(retry_after),
    )


class OpenAIProvider(Provider):
    """Chat completions, configured by the official SDK, sent over aiohttp or the SDK's own path."""

    name = "openai"

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        backend: str = "auto",
    ) -> None:
        super().__init__(model)
        import openai

        self._openai = openai
        self._key = api_key
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.transport = choose_transport(backend)
        self.client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
            http_client=self._sdk_http_client() if self.transport == "sdk" else None,
        )
        # What the SDK would send: its defaults (User-Agent, platform, org/project) plus auth.
        headers = {**self.client.default_headers, **self.client.auth_headers}
        self._headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        self._url = str(self.client.base_url).rstrip("/") + "/chat/completions"
        self._proxy = _env_proxy(self._url)
        self._session: Any = None

    def _sdk_http_client(self) -> Any:
        """The SDK's default httpx client with a pool as large as the engine's concurrency limit."""
        import httpx2  # the SDK's own httpx

        limits = httpx2.Limits(max_connections=4096, max_keepalive_connections=4096)
        return self._openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.timeout_s)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url or "api.openai.com"}

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        grammar: str | None = None,
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        payload = _dumps(body)
        if self.transport == "aiohttp":
            raw = await self._post_aiohttp(payload)
        else:
            raw = await self._post_sdk(payload)
        return parse_chat_completion(raw, self.model)

    async def _post_aiohttp(self, payload: bytes) -> bytes:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4096, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                # Set once here: per-request headers are merged into a new multidict on every call.
                headers=self._headers,
            )
        try:
            async with self._session.post(self._url, data=payload, proxy=self._proxy) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise _status_error(resp.status, raw, resp.headers.get("Retry-After"), self._key)
                return raw
        except TimeoutError:
            raise ProviderError("request timed out", retryable=True) from None
        except aiohttp.ClientError as e:
            raise ProviderError(redact(f"connection failed: {e}", self._key), retryable=True) from None

    async def _post_sdk(self, payload: bytes) -> bytes:
        oa = self._openai
        try:
            raw: bytes = await self.client.post(
                "/chat/completions", cast_to=bytes, content=payload, options={"headers": _JSON_HEADERS}
            )
            return raw
        except oa.APIStatusError as e:
            raise _status_error(
                e.status_code, e.response.content, e.response.headers.get("retry-after"), self._key
            ) from None
        except oa.APITimeoutError:
            raise ProviderError("request timed out", retryable=True) from None
        except oa.APIConnectionError as e:
            raise ProviderError(redact(f"connection failed: {e}", self._key), retryable=True) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.client.close()


def parse_chat_completion(raw: bytes, model: str) -> Completion:
    """A chat-completions JSON body -> Completion; anything malformed is a retryable error."""
    try:
        data = _loads(raw)
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not text")
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=data.get("model") or model,
            finish_reason=choice.get("finish_reason"),
        )
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ProviderError(
            f"malformed response: {type(e).__name__}: {str(e)[:120]}", retryable=True
        ) from None


def _make(options: ProviderOptions, api_key: str | None) -> Provider:
    assert options.model is not None  # filled with the default model by the options
    return OpenAIProvider(options.model, api_key or "", options.base_url, options.timeout_s, options.backend)


register_provider(
    ProviderSpec(
        name="openai",
        description="the OpenAI API, or any OpenAI-compatible server with base_url",
        default_model="gpt-4o-mini",
        factory=_make,
        key_variables=("OPENAI_API_KEY",),
        backends=("auto", "aiohttp", "sdk"),
        backend_help=(
            "'aiohttp' sends the SDK-configured request on an aiohttp session (about 4x less CPU per "
            "request), 'sdk' uses the SDK's own request path; auto picks aiohttp when installed"
        ),
        key_optional_with_base_url=True,
    )
)
