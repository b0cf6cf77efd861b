"""A `vdata gen` run through a provider's batch API (`"batch": true`), round by round.

Each round asks the strategy for requests exactly as the online loop does (same yield estimate, same
request limit), takes the replies it already has (response cache, or jobs of an earlier run), reserves
the rest at batch prices against `budget_usd` (stopping before the budget could be exceeded), submits
them as jobs split at the provider's limits, journals the job ids, polls until every job is final, and
turns the replies into records through the engine's own `_records_from`/`_release`, so every check the
engine applies to online replies applies to these too. Requests a job did not answer are retried as
`batch_options.retry` says. A rerun first finishes the jobs the journal lists (their replies go to the
response cache), so nothing is submitted or paid for twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vdata.core.errors import UserError
from vdata.core.io import JsonlJournal
from vdata.core.records import Record
from vdata.core.retry import backoff_delay
from vdata.generate.batch.base import BatchClient, BatchItem, ItemResult, batch_spec, split_jobs
from vdata.generate.batch.journal import BatchJournal, JobEntry, batch_journal_path
from vdata.generate.cache import ResponseCache, cache_key
from vdata.generate.cost import Ledger, estimate_prompt_tokens, price_for
from vdata.generate.options import GenOptions
from vdata.generate.parse import REQUEST_FAILED
from vdata.generate.providers.base import Completion, ProviderError, redact
from vdata.generate.strategies import GenRequest, RunState, Strategy
from vdata.generate.summary import Summary
from vdata.generate.templates import Message

T = TypeVar("T")


class Engine(Protocol):
    """What the runner uses of `generate.engine.Engine` (named here: the engine imports this module)."""

    options: GenOptions
    out: Path
    strategy: Strategy
    cache: ResponseCache
    ledger: Ledger
    summary: Summary
    identity: dict[str, Any]
    api_key: str | None
    accepted: list[Record]
    started: float
    on_progress: Callable[[Summary], None] | None
    log: Callable[[str], None]
    _order: deque[int]
    _ready: dict[int, list[Record]]
    _pending: list[Record]
    _fatal: str | None
    _consecutive_failures: int

    def _params(self, max_tokens: int, seed: int) -> dict[str, Any]: ...
    def _records_from(self, request: GenRequest, completion: Completion) -> list[Record]: ...
    def _release(self) -> None: ...
    def _gate_due(self, in_flight: int) -> bool: ...
    async def _gate(self) -> None: ...
    def _should_issue(self, state: RunState) -> bool: ...
    async def call(
        self, messages: list[Message], sample: int | str, max_tokens: int, seed: int
    ) -> Completion | None: ...


class BatchRunner:
    def __init__(self, engine: Engine, client: BatchClient) -> None:
        self.engine = engine
        self.client = client
        self.settings = engine.options.batch_options
        spec = batch_spec(engine.options.provider)
        self.max_requests = self.settings.max_requests_per_job or spec.max_requests_per_job
        mb = self.settings.max_mb_per_job
        self.max_bytes = int(mb * 1024 * 1024) if mb else spec.max_bytes_per_job
        self.price = price_for(engine.options, batch=True)
        self.jobs = BatchJournal(batch_journal_path(engine.out))
        # Replies fetched by this process, by key (the response cache may be off).
        self.replies: dict[str, Completion] = {}
        self.failures: dict[str, ItemResult] = {}
        self.reserved: dict[str, float] = {}  # key -> worst case reserved at batch prices

    # -- the run ----------------------------------------------------------------------------------
    async def run(self, state: RunState, journal: JsonlJournal) -> Summary:
        e = self.engine
        try:
            # Jobs an earlier run submitted: finish them first (paid once, whatever happens to this run).
            earlier = [j for j in self.jobs.jobs.values() if not j.done or not e.cache.enabled]
            e.summary.batch_jobs_resumed = len(earlier)
            await self._finish(earlier)
            while not e._fatal:
                requests, waiting = self._plan(state)
                if not requests:
                    if waiting and e.summary.stop_reason is None and len(e.accepted) < state.count:
                        e.summary.stop_reason = (
                            f"strategy {e.strategy.name!r} has nothing more to ask "
                            f"({len(e.accepted)} of {state.count} records)"
                        )
                    break
                await self._round(requests, state)
                e._release()
                while e._gate_due(0):  # the verification gate, as the online loop runs it
                    await e._gate()
                journal.append(e._pending)
                e._pending.clear()
                state.in_flight = 0
                if waiting:
                    state.round += 1
                self._progress()
        finally:
            journal.append(e._pending)
            e._pending.clear()
            e.cache.close()
        if e._fatal:
            raise UserError(f"the provider refused the request: {e._fatal}")
        e.summary.batch_state = None
        e.summary.records = len(e.accepted)
        e.summary.seconds = time.monotonic() - e.started
        return e.summary

    def _plan(self, state: RunState) -> tuple[list[GenRequest], bool]:
        """The round's requests, planned like the online loop plans its requests in flight."""
        e = self.engine
        planned: list[GenRequest] = []
        while e._should_issue(state):
            more = e.strategy.next_requests(state, e.options.concurrency)
            if not more:
                return planned, True
            for request in more:
                planned.append(request)
                e._order.append(request.sample_index)
                state.issued += 1
            state.in_flight = len(planned)
        return planned, False

    def _item(self, request: GenRequest) -> BatchItem:
        """The request as the online path would send it; its key is the online path's cache key."""
        e = self.engine
        max_tokens = request.max_tokens or e.options.max_tokens or 256
        seed = e.options.seed + request.sample_index
        key = cache_key(e.identity, request.messages, e._params(max_tokens, seed), request.sample_index)
        return BatchItem(key, request.messages, e.options.temperature, max_tokens, seed)

    def _reply(self, key: str) -> Completion | None:
        return self.replies.get(key) or self.engine.cache.get(key)

    async def _round(self, requests: list[GenRequest], state: RunState) -> None:
        e = self.engine
        items = [self._item(r) for r in requests]
        todo = []
        for item in items:
            if item.key in self.replies:
                continue
            if e.cache.get(item.key) is not None:
                e.summary.cached += 1
            else:
                todo.append(item)
        unsent: set[str] = set()
        attempts = e.options.max_retries + 1 if self.settings.retry == "batch" else 1
        for attempt in range(attempts):
            if attempt:
                todo = [it for it in todo if self._retryable(it.key)]
                if not todo:
                    break
                e.summary.retries += len(todo)
            sent = self._reserve(todo)
            unsent.update(it.key for it in todo[len(sent) :])
            todo = sent
            await self._finish(await self._submit(sent, attempt))
        online = [
            (r, it)
            for r, it in zip(requests, items, strict=True)
            if self.settings.retry == "online" and self._reply(it.key) is None and self._retryable(it.key)
        ]
        if online:
            e.summary.retries += len(online)
            await self._online(online)
        for request, item in zip(requests, items, strict=True):
            state.completed += 1
            completion = self._reply(item.key)
            e._ready[request.sample_index] = []
            if completion is not None:
                e._consecutive_failures = 0
                e._ready[request.sample_index] = e._records_from(request, completion)
            elif item.key not in unsent and not (e.summary.stop_reason or "").startswith("budget"):
                e.summary.failed += 1
                e.summary.drops[REQUEST_FAILED] += 1
                e._consecutive_failures += 1

    def _retryable(self, key: str) -> bool:
        failure = self.failures.get(key)
        return failure is not None and failure.retryable

    async def _online(self, pairs: list[tuple[GenRequest, BatchItem]]) -> None:
        """Ask for these one by one, as the online path does (online price, its retries and budget)."""
        e = self.engine
        slots = asyncio.Semaphore(e.options.concurrency)

        async def one(request: GenRequest, item: BatchItem) -> None:
            async with slots:
                completion = await e.call(
                    item.messages, request.sample_index, item.max_tokens, item.seed or 0
                )
            if completion is not None:
                self.replies[item.key] = completion
                self.failures.pop(item.key, None)

        await asyncio.gather(*(one(r, it) for r, it in pairs))

    # -- budget, submission, polling, results ----------------------------------------------------------
    def _reserve(self, items: list[BatchItem]) -> list[BatchItem]:
        """The leading items whose worst-case cost at batch prices fits the budget (all are reserved)."""
        e = self.engine
        for n, item in enumerate(items):
            worst = e.ledger.worst_case(estimate_prompt_tokens(item.messages), item.max_tokens, self.price)
            if not e.ledger.try_reserve(worst):
                if e.summary.stop_reason is None:
                    e.summary.stop_reason = (
                        f"budget reached: ${e.ledger.spent:.4f} spent and ${e.ledger.reserved:.4f} reserved "
                        f"of budget_usd ${e.options.budget_usd} at batch prices; the next request could "
                        "exceed it (raise budget_usd to continue; replies already paid for are free)"
                    )
                return items[:n]
            self.reserved[item.key] = self.reserved.get(item.key, 0.0) + worst
        return items

    async def _submit(self, items: list[BatchItem], attempt: int) -> list[JobEntry]:
        e = self.engine
        encoded = [self.client.encode(it) for it in items]
        entries = []
        for part, lines in split_jobs(items, encoded, self.max_requests, self.max_bytes):
            job_id = await self._retrying(lambda p=part, ls=lines: self.client.submit(p, ls))
            entry = JobEntry(job_id, e.options.provider, [it.key for it in part], attempt=attempt)
            self.jobs.add(entry)  # journalled before anything else can go wrong: never submitted twice
            entries.append(entry)
            e.summary.batch_jobs += 1
            e.summary.batch_requests += len(part)
            e.summary.requests += len(part)
        return entries

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """A job-management call, retried on transient errors; anything else stops the run."""
        e = self.engine
        for attempt in range(e.options.max_retries + 1):
            try:
                return await call()
            except ProviderError as err:
                e.summary.errors[f"HTTP {err.status}" if err.status else "connection"] += 1
                if not err.retryable or attempt == e.options.max_retries:
                    raise UserError(
                        redact(f"the batch API failed: {err}; rerun the same command to continue", e.api_key)
                    ) from None
                await asyncio.sleep(backoff_delay(attempt, err.retry_after))
        raise AssertionError("unreachable")

    async def _finish(self, entries: list[JobEntry]) -> None:
        """Poll until every job is final, then take its replies."""
        e = self.engine
        for entry in entries:
            if entry.done:  # an earlier process took its replies, but the cache is off: fetch them again
                await self._collect(entry, entry.state, count_cost=False)
        while True:
            waiting = []
            for entry in entries:
                if entry.done:
                    continue
                status = await self._retrying(lambda j=entry.id: self.client.poll(j))
                if status.done:
                    await self._collect(entry, status.state, count_cost=True, message=status.message)
                    entry.state, entry.done = status.state, True
                    self.jobs.save()
                else:
                    if status.state != entry.state:
                        entry.state = status.state
                        self.jobs.save()
                    waiting.append(f"{status.state} {status.completed}/{status.total or len(entry.keys)}")
            if not waiting:
                return
            e.summary.batch_state = f"{len(waiting)} job(s) waiting: " + ", ".join(waiting[:3])
            self._progress()
            await asyncio.sleep(self.settings.poll_seconds)

    async def _collect(self, entry: JobEntry, state: str, *, count_cost: bool, message: str = "") -> None:
        e = self.engine
        answered = set()
        for result in await self._retrying(lambda: self.client.results(entry.id)):
            if result.key not in entry.keys:
                continue  # not ours (a provider echoing something else): never trusted
            answered.add(result.key)
            reserved = self.reserved.pop(result.key, 0.0)
            if result.completion is None:
                e.ledger.settle(reserved, 0, 0, self.price)
                self.failures[result.key] = result
                e.summary.errors[result.error] += 1
                continue
            c = result.completion
            if count_cost:  # else an earlier process paid for it, like a cached reply
                cost = e.ledger.settle(reserved, c.prompt_tokens, c.completion_tokens, self.price)
                if e.summary.cost_usd is not None:
                    e.summary.cost_usd += cost
                e.summary.prompt_tokens += c.prompt_tokens
                e.summary.completion_tokens += c.completion_tokens
            self.replies[result.key] = c
            self.failures.pop(result.key, None)
            e.cache.put(result.key, c)
        missing = [key for key in entry.keys if key not in answered]
        for key in missing:  # an expired, failed or cancelled job left it out
            e.ledger.settle(self.reserved.pop(key, 0.0), 0, 0, self.price)
            self.failures[key] = ItemResult(key, None, f"batch {state}", True)
            e.summary.errors[f"batch {state}"] += 1
        if missing or message:
            e.log(
                f"batch job {entry.id} ended {state} with {len(missing)} of {len(entry.keys)} requests "
                "unanswered" + (f": {message}" if message else "")
            )

    def _progress(self) -> None:
        e = self.engine
        if e.on_progress:
            e.summary.records = len(e.accepted)
            e.on_progress(e.summary)
