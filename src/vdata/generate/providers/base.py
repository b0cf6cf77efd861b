"""The provider interface: one async `complete(messages, ...)` returning text and token usage.

Providers raise `ProviderError`; `retryable` says whether the engine should try again (429, 5xx,
timeouts, connection drops, malformed responses) and `retry_after` carries the server's Retry-After.
Error messages never include the API key (`redact`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str = ""
    finish_reason: str | None = None


class ProviderError(Exception):
    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


class Provider(ABC):
    name: str = ""

    def __init__(self, model: str) -> None:
        self.model = model

    @abstractmethod
    async def complete(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None
    ) -> Completion:
        """One chat completion; raises ProviderError."""

    def identity(self) -> dict[str, Any]:
        """What identifies the responder in the response-cache key (never secrets)."""
        return {"provider": self.name, "model": self.model}

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release clients, threads and models."""
