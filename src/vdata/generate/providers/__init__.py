"""Providers behind one interface (`Provider.complete`) and one factory (`make_provider`)."""

from __future__ import annotations

import os

from vdata.core.errors import UserError
from vdata.generate.options import KEY_VARIABLES, GenOptions
from vdata.generate.providers.base import Completion, Provider, ProviderError

__all__ = ["Completion", "Provider", "ProviderError", "make_provider", "resolve_api_key"]


def resolve_api_key(provider: str, explicit: str | None) -> str | None:
    """-k/--apikey, else APIKEY, else the provider's own variable. Local needs none."""
    if provider == "local":
        return None
    if explicit:
        return explicit
    variables = KEY_VARIABLES[provider]
    for var in variables:
        if os.environ.get(var):
            return os.environ[var]
    raise UserError(
        f"provider {provider!r} needs an API key: pass -k KEY or set {' or '.join(variables[1:])} "
        f"(or APIKEY) in the environment"
    )


def resolve_api_key_for(options: GenOptions, explicit: str | None) -> str | None:
    # OpenAI-compatible local servers (vLLM, Ollama, llama.cpp) usually accept any key.
    if options.provider == "openai" and options.base_url and not explicit:
        for var in KEY_VARIABLES["openai"]:
            if os.environ.get(var):
                return os.environ[var]
        return "not-needed"
    return resolve_api_key(options.provider, explicit)


def make_provider(options: GenOptions, api_key: str | None) -> Provider:
    """The one factory: a provider for `options` (the key comes from `resolve_api_key_for`)."""
    assert options.model is not None
    if options.provider == "openai":
        from vdata.generate.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(
            options.model, api_key or "", options.base_url, options.timeout_s, options.backend
        )
    if options.provider == "gemini":
        from vdata.generate.providers.gemini_provider import GeminiProvider

        return GeminiProvider(options.model, api_key or "", options.timeout_s, options.base_url)
    from vdata.generate.providers.local import LlamaCppProvider, TransformersProvider, choose_backend

    if choose_backend(options.model, options.backend) == "xllamacpp":
        return LlamaCppProvider(options.model, parallel=min(options.concurrency, 8))
    return TransformersProvider(options.model, batch_size=options.batch_size)
