"""`openai`: the official async SDK. `base_url` points it at any OpenAI-compatible server."""

from __future__ import annotations

import json
from typing import Any

from vdata.generate.providers.base import (
    Completion,
    Message,
    Provider,
    ProviderError,
    parse_retry_after,
    redact,
)


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(
        self, model: str, api_key: str, base_url: str | None = None, timeout_s: float = 120.0
    ) -> None:
        super().__init__(model)
        import httpx
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
            http_client=openai.DefaultAsyncHttpxClient(
                limits=httpx.Limits(max_connections=4096, max_keepalive_connections=4096), timeout=timeout_s
            ),
        )

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url or "api.openai.com"}

    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        oa = self._openai
        try:
            resp = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
                seed=seed,
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
        except (json.JSONDecodeError, ValueError, oa.APIResponseValidationError) as e:
            raise ProviderError(f"malformed response: {str(e)[:200]}", retryable=True) from None
        if isinstance(resp, str) or not getattr(resp, "choices", None):
            raise ProviderError("malformed response: no choices", retryable=True)
        choice = resp.choices[0]
        text = choice.message.content if choice.message else None
        if text is None:
            raise ProviderError("malformed response: no message content", retryable=True)
        usage = resp.usage
        return Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            model=resp.model or self.model,
            finish_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        await self.client.close()
