"""The `batch_options` of `vdata gen` (used when `"batch": true`); beside, not inside, `generate.batch`, so the
options module does not depend on the batch package (which depends on the options)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vdata.core.settings import StageSettings


class BatchOptions(StageSettings):
    poll_seconds: float = Field(30.0, gt=0, le=3600, description="Seconds between status checks of a job.")
    retry: Literal["online", "batch", "none"] = Field(
        "online",
        description=(
            "What happens to requests a job did not answer (error lines, expired or failed jobs): "
            "'online' sends them as ordinary requests (online price), 'batch' submits them in a new job "
            "(up to max_retries times), 'none' counts them as failed."
        ),
    )
    max_requests_per_job: int | None = Field(
        None,
        ge=1,
        description="Split into jobs of at most this many requests (default: the provider's limit).",
    )
    max_mb_per_job: float | None = Field(
        None,
        gt=0,
        description="Split into jobs of at most this many MB of requests (default: the provider's limit).",
    )
