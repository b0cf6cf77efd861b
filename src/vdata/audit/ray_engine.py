"""`vdata audit --engine ray`: the streaming pass on Ray Data, one task per input file (shard).

Each task reads its file with the audit's own readers and runs the same `Auditor` the local engine runs,
returning the shard's `AuditPartial` (partial.py); the driver merges them in input order and hands the
result to the same `build_report`, so both engines write the same report. A snapshot folder is read as the
Parquet shards its manifest lists; any other input is one shard per file.

Ray is imported lazily (the `vdata[ray]` extra). Without `ray_address` a local Ray with 2 CPUs is started
(`ray.init(num_cpus=2)`); an already initialised Ray (a caller's, a test session's) is used as it is and
left running.
"""

from __future__ import annotations

import bisect
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vdata.audit.auditor import AuditOptions, Auditor, ItemFetcher
from vdata.audit.hygiene import BenchmarkIndex
from vdata.audit.partial import AuditPartial
from vdata.audit.readers import AuditItem, DatasetReader, items_at
from vdata.core.errors import UserError
from vdata.core.lexicon import Lexicon
from vdata.core.progress import ProgressFactory

LOCAL_CPUS = 2


@dataclass
class ShardJob:
    """What every shard task needs: shipped to the workers with the task."""

    lexicon: Lexicon
    options: AuditOptions
    index: BenchmarkIndex | None
    cda_words: frozenset[str] | None
    text_column: str | None


def audit_shard(path: Path, job: ShardJob) -> AuditPartial:
    """One shard's streaming pass, the same code the local engine runs over the whole dataset."""
    auditor = Auditor(job.lexicon, job.options, job.index, job.cda_words)
    for item in DatasetReader([path], job.text_column):
        auditor.add(item)
    return auditor.partial()


def _audit_batch(batch: dict[str, np.ndarray], job: ShardJob) -> dict[str, list[Any]]:
    """Ray Data `map_batches` function: each row names a shard; the result row carries its pickled partial.

    A `UserError` (an unreadable file) comes back as the row's `error`, so the driver reports it as the
    local engine would, instead of as a Ray stack trace."""
    out: dict[str, list[Any]] = {"shard": [], "partial": [], "error": []}
    for shard, path in zip(batch["shard"].tolist(), batch["path"].tolist(), strict=True):
        try:
            state, error = pickle.dumps(audit_shard(Path(path), job), protocol=5), ""
        except UserError as e:
            state, error = b"", str(e)
        out["shard"].append(shard)
        out["partial"].append(state)
        out["error"].append(error)
    return out


def start_ray(address: str | None) -> Any:
    """The `ray` module, connected: to `address`, to an already initialised Ray, or to a new local one."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise UserError(
            "--engine ray needs Ray Data: pip install 'vdata[ray]' (ray[data]), or use --engine local"
        ) from e
    if not ray.is_initialized():
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=LOCAL_CPUS, **quiet)
        except ConnectionError as e:
            raise UserError(
                f"--ray-address {address}: cannot connect to Ray ({e}); is the cluster up?"
            ) from e
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # it would warn that progress bars are off
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # a library prints nothing; our progress factory reports shards
    return ray


def audit_on_ray(
    name: str, paths: Sequence[Path], job: ShardJob, address: str | None, progress: ProgressFactory
) -> tuple[AuditPartial, ItemFetcher]:
    """Audit every file as a Ray Data task; return the merged partial and a reader of rows by ordinal."""
    ray = start_ray(address)
    shards = [str(p) for p in paths]
    items = [{"shard": i, "path": p} for i, p in enumerate(shards)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _audit_batch, fn_kwargs={"job": job}, batch_size=1, num_cpus=1, batch_format="numpy"
    )
    done: dict[int, AuditPartial] = {}
    merged: AuditPartial | None = None
    rows: list[int] = []  # records per shard, in order
    next_shard = 0
    with progress(f"auditing {name} on Ray", len(shards), "shards") as task:
        for row in dataset.iter_rows():
            if row["error"]:
                raise UserError(str(row["error"]))
            done[int(row["shard"])] = pickle.loads(row["partial"])
            task.advance(1)
            while next_shard in done:  # merge in input order as soon as the next shard is in
                part = done.pop(next_shard)
                rows.append(part.n_records)
                if merged is None:
                    merged = part
                else:
                    merged.merge(part)
                next_shard += 1
    assert merged is not None  # expand_inputs never returns an empty list
    return merged, ShardRows([Path(p) for p in shards], rows, job.text_column)


class ShardRows:
    """Reads rows by global ordinal: finds each one's shard from the shards' record counts."""

    def __init__(self, paths: list[Path], rows_per_shard: list[int], text_column: str | None) -> None:
        self.paths = paths
        self.starts = np.concatenate([[0], np.cumsum(rows_per_shard)]).tolist()
        self.text_column = text_column

    def __call__(self, ordinals: Sequence[int]) -> dict[int, AuditItem]:
        by_shard: dict[int, list[int]] = {}
        for o in ordinals:
            by_shard.setdefault(bisect.bisect_right(self.starts, o) - 1, []).append(o)
        found: dict[int, AuditItem] = {}
        for shard, wanted in by_shard.items():
            start = self.starts[shard]
            reader = DatasetReader([self.paths[shard]], self.text_column)
            for local, item in items_at(reader, [o - start for o in wanted]).items():
                found[local + start] = item
        return found
