"""The provider interface: one async `complete(messages, ...)` returning text and token usage, and the
registry of providers by name.

Providers raise `ProviderError`; `retryable` says whether the engine should try again (429, 5xx,
timeouts, connection drops, malformed responses) and `retry_after` carries the server's Retry-After.
Error messages never include the API key (`redact`).

Each provider module declares itself with a `ProviderSpec` (name, default model, key variables,
backends, factory) passed to `register_provider`; the options file, `vdata schema gen`, the help text
and the error messages take the allowed names and defaults from there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vdata.core.registry import Registry

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


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


class Provider(ABC):
    name: str = ""
    # Whether `complete` honours `grammar` (a GBNF grammar the reply must follow); the others never get one.
    constrains_replies: bool = False

    def __init__(self, model: str) -> None:
        self.model = model

    @abstractmethod
    async def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        grammar: str | None = None,
    ) -> Completion:
        """One chat completion; raises ProviderError. `grammar`: only for `constrains_replies` providers."""

    def identity(self) -> dict[str, Any]:
        """What identifies the responder in the response-cache key (never secrets)."""
        return {"provider": self.name, "model": self.model}

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release clients, threads and models."""


class ProviderOptions(Protocol):
    """What a provider factory reads from the options (`GenOptions` has these and more)."""

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def backend(self) -> str: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_tokens(self) -> int | None: ...


# factory(options, api_key) -> a provider; the model is already filled in (the spec's default if unset).
ProviderFactory = Callable[[ProviderOptions, str | None], Provider]


@dataclass(frozen=True)
class ProviderSpec:
    """Everything `vdata gen` needs to know about a provider, declared once by its module."""

    name: str
    description: str  # one phrase for the docs and `vdata schema gen`
    default_model: str
    factory: ProviderFactory
    # Environment variables holding its key, in lookup order after -k/--apikey and $APIKEY.
    key_variables: tuple[str, ...] = ()
    needs_key: bool = True
    # Values of the `backend` option it accepts ("auto" first) and what they mean, for the docs.
    backends: tuple[str, ...] = ("auto",)
    backend_help: str = ""
    accepts_base_url: bool = True
    key_optional_with_base_url: bool = False  # OpenAI-compatible local servers usually ignore the key
    free: bool = False  # no token price (runs on this machine)
    default_per_request: int = 10
    default_max_tokens: int = 1500
    default_concurrency: int = 8  # requests in flight when the options give none


PROVIDERS: Registry[ProviderSpec] = Registry("provider", "vdata.generate.providers")


def register_provider(spec: ProviderSpec) -> ProviderSpec:
    """Make `spec` available as option `"provider": spec.name`."""
    if "auto" not in spec.backends:
        raise ValueError(f"provider {spec.name!r}: backends must include 'auto' (the option's default)")
    return PROVIDERS.add(spec.name, spec)
