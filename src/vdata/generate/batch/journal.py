"""The batch jobs of a run, kept beside its record journal (`.OUT.batches.json`).

A job is written here right after the provider accepts it, with the keys of the requests it holds, so a
rerun after a crash or kill picks up the running jobs (their replies land in the response cache) instead
of submitting and paying for them again. `counted` marks jobs whose cost was already added to a summary.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vdata.core.io import write_json_atomic


def batch_journal_path(out: Path) -> Path:
    return out.parent / f".{out.name}.batches.json"


@dataclass
class JobEntry:
    id: str
    provider: str
    keys: list[str]
    state: str = "submitted"
    done: bool = False
    counted: bool = False
    attempt: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class BatchJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: dict[str, JobEntry] = {}
        if path.exists():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                doc = json.loads(path.read_text(encoding="utf-8"))
                self.jobs = {j["id"]: JobEntry(**j) for j in doc["jobs"]}

    def add(self, entry: JobEntry) -> None:
        self.jobs[entry.id] = entry
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, {"version": 1, "jobs": [asdict(j) for j in self.jobs.values()]})
