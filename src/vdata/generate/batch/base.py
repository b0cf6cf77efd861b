"""What a provider's batch API does for `vdata gen`, and the registry of them by provider name.

A `BatchClient` submits a list of chat requests as one job, reports the job's status, and returns one
`ItemResult` per request it answered (a reply, or an error saying whether asking again may help).
Requests a finished job does not mention (expired or failed jobs) count as unanswered. Each request is
identified by its `key` (the response-cache key), which the provider echoes back, so results can be
matched to requests in any order and after a restart.

Adding a batch API is one module in this package that calls `register_batch(BatchSpec(...))` with the
name of the provider whose requests it sends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vdata.core.errors import UserError
from vdata.core.registry import Registry
from vdata.generate.providers.base import Completion, Message, ProviderOptions


@dataclass(frozen=True)
class BatchItem:
    key: str
    messages: list[Message]
    temperature: float
    max_tokens: int
    seed: int | None


@dataclass(frozen=True)
class ItemResult:
    key: str
    completion: Completion | None
    error: str = ""  # a short label for the summary, e.g. "HTTP 500" or "batch_expired"
    retryable: bool = True


@dataclass(frozen=True)
class JobStatus:
    state: str  # the provider's own name for it
    done: bool  # no further change expected (completed, expired, failed, cancelled)
    completed: int = 0
    failed: int = 0
    total: int = 0
    message: str = ""  # why a job failed, when the provider says


class BatchClient(ABC):
    """One provider's batch protocol, bound to a model, key and endpoint."""

    @abstractmethod
    def encode(self, item: BatchItem) -> bytes:
        """The request as the provider stores it in a job (its size decides where jobs are split)."""

    @abstractmethod
    async def submit(self, items: list[BatchItem], encoded: list[bytes]) -> str:
        """Create one job for `items` (pre-encoded) and return its id."""

    @abstractmethod
    async def poll(self, job_id: str) -> JobStatus: ...

    @abstractmethod
    async def results(self, job_id: str) -> list[ItemResult]:
        """Every answer of a finished job (replies and per-request errors)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""


# factory(options, api_key) -> a client for options.model (already filled in) at options.base_url.
BatchFactory = Callable[[ProviderOptions, str | None], BatchClient]


@dataclass(frozen=True)
class BatchSpec:
    provider: str  # the provider whose requests this API sends
    factory: BatchFactory
    max_requests_per_job: int
    max_bytes_per_job: int
    description: str = ""


BATCH_APIS: Registry[BatchSpec] = Registry("batch API", "vdata.generate.batch")


def register_batch(spec: BatchSpec) -> BatchSpec:
    return BATCH_APIS.add(spec.provider, spec)


def batch_spec(provider: str) -> BatchSpec:
    spec = BATCH_APIS.find(provider)
    if spec is None:
        raise UserError(
            f'"batch": true is not available for provider {provider!r}; batch APIs exist for '
            f'{", ".join(repr(n) for n in BATCH_APIS.names())} (or set "batch": false)'
        )
    return spec


def split_jobs(
    items: list[BatchItem], encoded: list[bytes], max_requests: int, max_bytes: int
) -> Iterable[tuple[list[BatchItem], list[bytes]]]:
    """Consecutive runs of items, each within the request and byte limits (a line counts its newline)."""
    start, size = 0, 0
    for i, line in enumerate(encoded):
        n = len(line) + 1
        if n > max_bytes:
            raise UserError(
                f"one request is {n} bytes, more than a batch job may hold ({max_bytes}); "
                "raise batch_options.max_mb_per_job or lower max_tokens/prompt size"
            )
        if i > start and (i - start >= max_requests or size + n > max_bytes):
            yield items[start:i], encoded[start:i]
            start, size = i, 0
        size += n
    if start < len(items):
        yield items[start:], encoded[start:]


def json_error_label(error: Any) -> str:
    """A short label from an error object such as {"code": "batch_expired", "message": ...}."""
    if isinstance(error, dict):
        return str(error.get("code") or error.get("status") or error.get("message") or "error")[:60]
    return str(error)[:60] if error else "error"


def make_batch_client(options: ProviderOptions, api_key: str | None) -> BatchClient:
    """The batch API of `options.provider` (a UserError naming the providers that have one, if it has none)."""
    return batch_spec(options.provider).factory(options, api_key)
