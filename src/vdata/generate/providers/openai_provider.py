"""`openai`: the official async SDK. `base_url` points it at any OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import Any

from vdata.generate.providers.base import (
    Completion,
    Message,
    Provider,
    ProviderError,
    parse_retry_after,
    redact,
)


def _json_codec() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    try:
        import orjson

        return orjson.loads, orjson.dumps
    except ImportError:
        return json.loads, lambda obj: json.dumps(obj, ensure_ascii=False).encode()


_loads, _dumps = _json_codec()


def _http_client(openai: Any, timeout_s: float) -> Any:
    """aiohttp transport when installed (several times less CPU per request than httpx), else httpx."""
    import httpx2

    limits = httpx2.Limits(max_connections=4096, max_keepalive_connections=4096)
    if importlib.util.find_spec("aiohttp") is not None and hasattr(openai, "DefaultAioHttpClient"):
        return openai.DefaultAioHttpClient(limits=limits, timeout=timeout_s)
    return openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout_s)


class OpenAIProvider(Provider):
    """Chat completions through the SDK's client (auth, base_url, error types, status handling).

    The request body is serialised once and the reply parsed as plain JSON (the SDK's low-level
    `post(..., cast_to=bytes)`), skipping its typed-dict transform and pydantic response models: at
    hundreds of requests per second those dominate the client's CPU time.
    """

    name = "openai"

    def __init__(
        self, model: str, api_key: str, base_url: str | None = None, timeout_s: float = 120.0
    ) -> None:
        super().__init__(model)
        import openai

        self._openai = openai
        self._key = api_key
        self.base_url = base_url
        # Retries are the engine's (with jitter and Retry-After); the SDK's own are off.
        self.client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
            http_client=_http_client(openai, timeout_s),
        )

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url or "api.openai.com"}

    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        oa = self._openai
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        try:
            raw = await self.client.post(
                "/chat/completions", cast_to=bytes, content=_dumps(body), options={"headers": _JSON_HEADERS}
            )
        except oa.APIStatusError as e:
            status = e.status_code
            retryable = status in (408, 409, 425, 429) or status >= 500
            hint = " (check the API key)" if status in (401, 403) else ""
            raise ProviderError(
                redact(f"HTTP {status}: {str(e)[:300]}{hint}", self._key),
                retryable=retryable,
                status=status,
                retry_after=parse_retry_after(e.response.headers.get("retry-after")),
            ) from None
        except oa.APITimeoutError:
            raise ProviderError("request timed out", retryable=True) from None
        except oa.APIConnectionError as e:
            raise ProviderError(redact(f"connection failed: {e}", self._key), retryable=True) from None
        return parse_chat_completion(raw, self.model)

    async def aclose(self) -> None:
        await self.client.close()


_JSON_HEADERS = {"Content-Type": "application/json"}


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
