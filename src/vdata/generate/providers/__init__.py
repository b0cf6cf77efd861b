"""Providers behind one interface (`Provider.complete`), registered by name, built by one factory.

Adding a provider is adding one module here (or anywhere, imported before the options are read) that
calls `register_provider(ProviderSpec(...))`; see `base.ProviderSpec` for what it declares.
"""

from __future__ import annotations

import os

from vdata.core.errors import UserError
from vdata.generate.providers.base import (
    PROVIDERS,
    Provider,
    ProviderOptions,
    ProviderSpec,
    register_provider,
)

__all__ = [
    "PROVIDERS",
    "ProviderSpec",
    "make_provider",
    "provider_names",
    "register_provider",
    "resolve_api_key",
]

# The variable every provider reads after -k/--apikey, before its own.
GENERIC_KEY_VARIABLE = "APIKEY"


def provider_names() -> list[str]:
    """Every provider the `provider` option accepts."""
    return PROVIDERS.names()


def key_variables(spec: ProviderSpec) -> tuple[str, ...]:
    """Where a key is looked up after -k/--apikey, in order."""
    return (GENERIC_KEY_VARIABLE, *spec.key_variables)


def resolve_api_key(options: ProviderOptions, explicit: str | None) -> str | None:
    """-k/--apikey, else APIKEY, else the provider's own variables. Keyless providers get None."""
    spec = PROVIDERS.get(options.provider)
    if not spec.needs_key:
        return None
    if explicit:
        return explicit
    variables = key_variables(spec)
    for var in variables:
        if os.environ.get(var):
            return os.environ[var]
    if options.base_url and spec.key_optional_with_base_url:
        return "not-needed"
    own = " or ".join(spec.key_variables) or GENERIC_KEY_VARIABLE
    generic = f" (or {GENERIC_KEY_VARIABLE})" if spec.key_variables else ""
    raise UserError(
        f"provider {options.provider!r} needs an API key: pass -k KEY or set {own}{generic} in the environment"
    )


def make_provider(options: ProviderOptions, api_key: str | None) -> Provider:
    """The one factory: the provider `options.provider` names, built for `options` (key: `resolve_api_key`)."""
    return PROVIDERS.get(options.provider).factory(options, api_key)
