"""What a `vdata gen` run did: records, drops, requests, tokens, cost, time, and why it stopped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdata.core.records import Record
from vdata.generate.verify import Rejected


@dataclass
class Summary:
    out: Path
    wanted: int
    records: int = 0
    resumed: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    stop_reason: str | None = None
    errors: Counter[str] = field(default_factory=Counter)
    # Batch APIs: jobs this run submitted, jobs of an earlier run it picked up, requests sent in jobs,
    # and while polling, what the jobs are doing.
    batch_jobs: int = 0
    batch_jobs_resumed: int = 0
    batch_requests: int = 0
    batch_state: str | None = None
    # The verification gate: candidates it saw, seconds it took (drops are in `drops` as "gate/<check>").
    gated: int = 0
    gate_seconds: float = 0.0
    judge_load_seconds: float = 0.0
    # The records written to `out`, for whoever acts on them afterwards (e.g. the contribution offer).
    written: list[Record] = field(default_factory=list, repr=False)
    # Candidates the gate dropped, with the failing check and reason (for `--rejected FILE`).
    rejected: list[Rejected] = field(default_factory=list, repr=False)

    @property
    def complete(self) -> bool:
        return self.records >= self.wanted

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (`vdata gen --summary FILE.json`), drops by reason."""
        return {
            "out": str(self.out),
            "wanted": self.wanted,
            "records": self.records,
            "complete": self.complete,
            "resumed": self.resumed,
            "drops": dict(self.drops.most_common()),
            "requests": self.requests,
            "cached": self.cached,
            "failed": self.failed,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "seconds": round(self.seconds, 3),
            "stop_reason": self.stop_reason,
            "errors": dict(self.errors),
            "batch": {
                "jobs": self.batch_jobs,
                "jobs_resumed": self.batch_jobs_resumed,
                "requests": self.batch_requests,
            },
            "gate": {
                "checked": self.gated,
                "passed": self.gated - len(self.rejected),
                "seconds": round(self.gate_seconds, 3),
                "judge_load_seconds": round(self.judge_load_seconds, 3),
            },
        }
