"""`gemini`: the official google-genai SDK (async client)."""

from __future__ import annotations

from typing import Any

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


class GeminiProvider(Provider):
    name = "gemini"

    def __init__(
        self, model: str, api_key: str, timeout_s: float = 120.0, base_url: str | None = None
    ) -> None:
        super().__init__(model)
        from google import genai
        from google.genai import types

        self._types = types
        self._key = api_key
        self.base_url = base_url
        self.client = genai.Client(
            api_key=api_key, http_options=types.HttpOptions(timeout=int(timeout_s * 1000), base_url=base_url)
        )

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url or "generativelanguage"}

    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        grammar: str | None = None,
    ) -> Completion:
        from google.genai import errors

        types = self._types
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
        contents = [
            types.Content(
                role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])]
            )
            for m in messages
            if m["role"] != "system"
        ]
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=temperature, max_output_tokens=max_tokens, seed=seed
        )
        try:
            resp = await self.client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except errors.APIError as e:
            status = int(e.code) if e.code else None
            retryable = status is None or status in (408, 429) or status >= 500
            raise ProviderError(
                redact(f"Gemini error {status}: {str(e)[:300]}", self._key),
                retryable=retryable,
                status=status,
            ) from None
        except TimeoutError:
            raise ProviderError("request timed out", retryable=True) from None
        except Exception as e:  # httpx transport errors surface unwrapped
            if type(e).__module__.startswith("httpx"):
                raise ProviderError(redact(f"connection failed: {e}", self._key), retryable=True) from None
            raise
        text = resp.text
        if text is None:
            reason = resp.candidates[0].finish_reason if resp.candidates else "no candidates"
            raise ProviderError(f"empty response ({reason})", retryable=False)
        usage = resp.usage_metadata
        return Completion(
            text=text,
            prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
            completion_tokens=(usage.candidates_token_count or 0) if usage else 0,
            model=self.model,
        )


def _make(options: ProviderOptions, api_key: str | None) -> Provider:
    assert options.model is not None  # filled with the default model by the options
    return GeminiProvider(options.model, api_key or "", options.timeout_s, options.base_url)


register_provider(
    ProviderSpec(
        name="gemini",
        description="Google's Gemini API (base_url: another endpoint or gateway)",
        default_model="gemini-2.0-flash",
        factory=_make,
        key_variables=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    )
)
