"""The generation engine: asks the provider until `count` valid unique records exist or a limit is hit.

* asyncio with at most `concurrency` requests in flight; RPM/TPM token buckets; retries with
  exponential backoff + jitter that honour Retry-After; a request failing after its retries is
  recorded (summary: request_failed), not fatal.
* Every reply is cached on disk before its records are journalled, so kill -9 at any moment loses
  nothing: a rerun replays cached replies (free) and the journal (JSONL beside OUT, de-duplicated by
  id) ends up with every record exactly once. The final OUT is written atomically from the journal.
* Cost is reserved at worst case (prompt estimate + max_tokens) before a request is sent, so
  `budget_usd` is never exceeded; the run stops cleanly when the next request might exceed it.

`generate()` is the library entry point: it returns a `Summary` and draws or prints nothing itself;
progress goes to the `progress` factory and warnings to `log`, both given by the caller (the CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vdata.core.errors import UserError
from vdata.core.io import JsonlJournal, check_writable, format_for, write_json_atomic, write_records
from vdata.core.progress import ProgressFactory, no_progress
from vdata.core.ratelimit import TokenBucket
from vdata.core.records import Record
from vdata.core.retry import backoff_delay
from vdata.generate.batch.base import BatchClient, make_batch_client
from vdata.generate.batch.journal import batch_journal_path
from vdata.generate.batch.runner import BatchRunner
from vdata.generate.cache import ResponseCache, cache_key
from vdata.generate.cost import Ledger, estimate_prompt_tokens, price_for
from vdata.generate.eventloop import event_loop_factory
from vdata.generate.options import GenOptions
from vdata.generate.parse import DUPLICATE, REQUEST_FAILED
from vdata.generate.progress import SummaryProgress
from vdata.generate.providers import make_provider, resolve_api_key
from vdata.generate.providers.base import Completion, Provider, ProviderError, redact
from vdata.generate.strategies import GenRequest, RunState, Strategy, get_strategy
from vdata.generate.summary import Summary
from vdata.generate.templates import Message, load_template, messages_sha256
from vdata.generate.verify import enabled_checks, verify_records
from vdata.generate.verify.lexicon import load_lexicon

JOURNAL_FLUSH_S = 0.5
JOURNAL_FLUSH_RECORDS = 256
# Statuses that will not get better by asking again: stop the run instead of burning max_requests.
FATAL_STATUSES = (400, 401, 403, 404)
# Options that change which records a run produces; a partial run with different ones must not be resumed.
_CONTENT_KEYS = (
    "provider",
    "model",
    "base_url",
    "strategy",
    "categories",
    "per_request",
    "temperature",
    "max_tokens",
    "seed",
    "prompts",
    "terms",
    "attributes",
    "propose_attributes",
    "strategy_options",
    "backend",
)


def journal_path(out: Path) -> Path:
    return out.parent / f".{out.name}.journal.jsonl"


def run_meta_path(out: Path) -> Path:
    return out.parent / f".{out.name}.run.json"


def options_fingerprint(options: GenOptions) -> str:
    data = options.model_dump(mode="json", include=set(_CONTENT_KEYS))
    if options.gate_on:  # only then: partial runs from before the gate existed keep their fingerprint
        data["verify"] = options.model_dump(mode="json", include={"judge_model", "verify_options"})
    # Not core.fingerprint: this hash escapes non-ASCII (json.dumps' default), and changing it would make
    # partial runs with non-ASCII options (terms, paths) unresumable.
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Engine:
    def __init__(
        self,
        options: GenOptions,
        out: Path,
        provider: Provider,
        strategy: Strategy,
        *,
        api_key: str | None = None,
        cache: ResponseCache | None = None,
        on_progress: Callable[[Summary], None] | None = None,
        log: Callable[[str], None] | None = None,
        batch: BatchClient | None = None,
    ) -> None:
        self.options = options
        self.batch = batch
        self.out = out
        self.provider = provider
        self.strategy = strategy
        self.api_key = api_key
        self.cache = cache or ResponseCache(enabled=options.cache)
        self.on_progress = on_progress
        self.log = log or (lambda _msg: None)
        self.identity = provider.identity()
        self.constrain = options.constrain and provider.constrains_replies
        self.cache.open(self.identity)
        self.ledger = Ledger(price_for(options), options.budget_usd)
        rl = options.rate_limit
        self.rpm = TokenBucket.per_minute(rl.rpm) if rl.rpm else None
        self.tpm = TokenBucket.per_minute(rl.tpm) if rl.tpm else None
        self.summary = Summary(out=out, wanted=options.count)
        self.summary.cost_usd = 0.0 if self.ledger.price else None
        self.accepted: list[Record] = []
        self._pending: list[Record] = []
        self._produced: set[str] = set()
        self._journal_ids: set[str] = set()
        self._consecutive_failures = 0
        self._per_category: Counter[str] = Counter()
        self._order: deque[int] = deque()
        self._ready: dict[int, list[Record]] = {}
        self._fatal: str | None = None
        # Candidates waiting for the verification gate, in request order (gated in groups).
        self._gate_queue: list[Record] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = time.monotonic()

    # -- one request, with cache, rate limits, retries and cost ---------------------------------------
    def _params(self, max_tokens: int, seed: int, grammar: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.options.temperature,
            "max_tokens": max_tokens,
            "seed": seed,
            "template": self.strategy.template.tag,
        }
        if grammar is not None:  # the reply was constrained: part of what determines it
            params["grammar_sha256"] = hashlib.sha256(grammar.encode()).hexdigest()
        return params

    def _grammar(self, request: GenRequest) -> str | None:
        return self.strategy.reply_grammar(request) if self.constrain else None

    async def call(
        self,
        messages: list[Message],
        sample: int | str,
        max_tokens: int,
        seed: int,
        grammar: str | None = None,
    ) -> Completion | None:
        params = self._params(max_tokens, seed, grammar)
        constrained = {"grammar": grammar} if grammar is not None else {}
        key = cache_key(self.identity, messages, params, sample)
        hit = self.cache.get(key)
        if hit is not None:
            self.summary.cached += 1
            return hit
        estimate = estimate_prompt_tokens(messages)
        worst = self.ledger.worst_case(estimate, max_tokens)
        if not self.ledger.try_reserve(worst):
            if self.summary.stop_reason is None:
                self.summary.stop_reason = (
                    f"budget reached: ${self.ledger.spent:.4f} spent of budget_usd ${self.options.budget_usd}; "
                    "the next request could exceed it (raise budget_usd to continue; cached replies are free)"
                )
            return None
        try:
            for attempt in range(self.options.max_retries + 1):
                if self.rpm:
                    await self.rpm.acquire(1)
                if self.tpm:
                    await self.tpm.acquire(estimate + max_tokens)
                self.summary.requests += 1
                try:
                    async with asyncio.timeout(self.options.timeout_s):  # no extra task, unlike wait_for
                        completion = await self.provider.complete(
                            messages,
                            temperature=self.options.temperature,
                            max_tokens=max_tokens,
                            seed=seed,
                            **constrained,
                        )
                except (ProviderError, TimeoutError) as e:
                    err = (
                        e
                        if isinstance(e, ProviderError)
                        else ProviderError("request timed out", retryable=True)
                    )
                    if self.tpm:
                        self.tpm.refund(estimate + max_tokens)
                    label = f"HTTP {err.status}" if err.status else str(err).split(":")[0]
                    self.summary.errors[label] += 1
                    if err.status in FATAL_STATUSES:
                        self._fatal = redact(str(err), self.api_key)
                        return None
                    if not err.retryable or attempt == self.options.max_retries:
                        self.log(redact(f"request {sample} failed: {err}", self.api_key))
                        return None
                    self.summary.retries += 1
                    await asyncio.sleep(backoff_delay(attempt, err.retry_after))
                    continue
                if self.tpm:
                    self.tpm.refund(
                        max(
                            0, estimate + max_tokens - completion.prompt_tokens - completion.completion_tokens
                        )
                    )
                cost = self.ledger.settle(worst, completion.prompt_tokens, completion.completion_tokens)
                worst = 0.0
                if self.summary.cost_usd is not None:
                    self.summary.cost_usd += cost
                self.summary.prompt_tokens += completion.prompt_tokens
                self.summary.completion_tokens += completion.completion_tokens
                self.cache.put(key, completion)
                return completion
            return None
        finally:
            if worst:
                self.ledger.settle(worst, 0, 0)

    async def ask(self, messages: list[Message], stage: str, max_tokens: int | None) -> str:
        """For strategies' one-off stages; a failure returns '' (the strategy falls back to defaults)."""
        completion = await self.call(
            messages, f"prepare:{stage}", max_tokens or self.options.max_tokens or 256, self.options.seed
        )
        if completion is None:
            self.summary.failed += 1
            self.summary.drops[REQUEST_FAILED] += 1
            if self._fatal:
                raise UserError(f"the provider refused the request: {self._fatal}")
        return completion.text if completion else ""

    # -- records ----------------------------------------------------------------------------------
    def _records_from(self, request: GenRequest, completion: Completion) -> list[Record]:
        """Checked candidate records of one reply (de-duplication happens on release, in request order)."""
        extraction = self.strategy.parse(completion.text, request)
        self.summary.drops.update(extraction.drops)
        prompt_sha = messages_sha256(request.messages)
        params = self._params(
            request.max_tokens or self.options.max_tokens or 0,
            self.options.seed + request.sample_index,
            self._grammar(request),
        )
        params["per_request"] = self.options.per_request
        return [
            Record(
                text=t.text,
                target=t.target,
                attribute=t.attribute,
                category=request.category,
                strategy=self.strategy.name,
                attributes=request.attributes,
                provider=self.options.provider,
                model=self.options.model or "",
                prompt_sha256=prompt_sha,
                params=params,
            )
            for t in extraction.triples
        ]

    def _release(self) -> None:
        """Accept finished replies in the order they were requested, so the output does not depend on
        which reply happened to arrive first (a rerun from cache gives the same file)."""
        while self._order and self._order[0] in self._ready:
            candidates = self._ready.pop(self._order.popleft())
            fresh = []
            for rec in candidates:
                if rec.id in self._produced:
                    self.summary.drops[DUPLICATE] += 1
                    continue
                self._produced.add(rec.id)
                if rec.id not in self._journal_ids:  # else: a resumed run replaying a journalled reply
                    fresh.append(rec)
            if self.options.gate_on:
                self._gate_queue.extend(fresh)
            else:
                self._accept(fresh)

    # -- the verification gate: the one place candidates are checked before they are accepted ------
    def _gate_due(self, in_flight: int) -> bool:
        if not self._gate_queue:
            return False
        need = self.options.count - len(self.accepted)
        if need <= 0:
            return False
        return not in_flight or len(self._gate_queue) >= min(self.options.verify_options.batch_size, need)

    async def _gate(self) -> None:
        """Check the queued candidates (in a worker thread, so replies keep arriving meanwhile) and
        accept those that pass; drops are counted per failing check."""
        settings = self.options.verify_options
        # Never more than the records still needed: candidates past `count` would cost judge calls (paid,
        # with the LLM judge) for nothing, and the gated ones stay a prefix of the request order.
        take = min(settings.batch_size, self.options.count - len(self.accepted))
        batch, self._gate_queue = self._gate_queue[:take], self._gate_queue[take:]
        result = await asyncio.to_thread(
            verify_records,
            batch,
            settings,
            judge=self.options.judge_model,
            ask=self._ask_judge if settings.llm_judge else None,
        )
        self.summary.gated += len(batch)
        self.summary.gate_seconds += result.seconds
        self.summary.judge_load_seconds += result.load_seconds  # 0 when generate() loaded it already
        self.summary.drops.update({f"gate/{name}": n for name, n in result.reasons.items()})
        self.summary.rejected.extend(result.rejected)
        self._accept(result.kept)

    def _ask_judge(self, chats: list[list[Message]]) -> list[str | None]:
        """The LLM judge's questions, sent from the gate's thread through the engine's own event loop
        (cache, rate limits, retries and budget apply), at most `concurrency` at a time."""
        assert self._loop is not None

        async def one(messages: list[Message], limit: asyncio.Semaphore) -> str | None:
            async with limit:
                completion = await self.call(
                    messages, f"verify:{messages_sha256(messages)}", 64, self.options.seed
                )
            return completion.text if completion else None

        async def every() -> list[str | None]:
            limit = asyncio.Semaphore(self.options.concurrency)
            return list(await asyncio.gather(*(one(m, limit) for m in chats)))

        return asyncio.run_coroutine_threadsafe(every(), self._loop).result()

    def _quota(self, category: str) -> int:
        """Categories share `count` evenly (the first ones get the remainder)."""
        cats = [self.strategy.fixed_category] if self.strategy.fixed_category else self.options.categories
        if category not in cats:
            return self.options.count
        base, extra = divmod(self.options.count, len(cats))
        return base + (1 if cats.index(category) < extra else 0)

    def _accept(self, records: list[Record]) -> None:
        for rec in records:
            if len(self.accepted) >= self.options.count:
                return
            if self._per_category[rec.category] >= self._quota(rec.category):
                continue  # this category has its share; the reply stays cached for a bigger rerun
            self._per_category[rec.category] += 1
            self.accepted.append(rec)
            self._pending.append(rec)

    # -- the run ----------------------------------------------------------------------------------
    def _yield_estimate(self, completed: int) -> float:
        new = len(self.accepted) - self.summary.resumed
        if completed >= 4:
            return max(new / completed, 0.05)
        return max(1.0, (self.options.per_request or 1) / 2)

    def _should_issue(self, state: RunState) -> bool:
        if self._fatal or self.summary.stop_reason:
            return False
        need = self.options.count - len(self.accepted)
        if need <= 0:
            return False
        if state.issued >= self.options.request_limit:
            self.summary.stop_reason = (
                f"stopped after {state.issued} requests (max_requests) with {len(self.accepted)} of "
                f"{self.options.count} records; raise max_requests, or try another model or strategy"
            )
            return False
        if self._consecutive_failures >= max(10, 2 * self.options.concurrency):
            self.summary.stop_reason = (
                f"{self._consecutive_failures} requests in a row failed after retries "
                f"({', '.join(f'{k} x{v}' for k, v in self.summary.errors.most_common(3))}); check the provider"
            )
            return False
        # Do not over-ask: requests in flight are expected to cover part of what is missing.
        return state.in_flight * self._yield_estimate(state.completed) < need

    async def _one(self, request: GenRequest) -> tuple[GenRequest, Completion | None]:
        max_tokens = request.max_tokens or self.options.max_tokens or 256
        seed = self.options.seed + request.sample_index
        grammar = self._grammar(request)
        return request, await self.call(request.messages, request.sample_index, max_tokens, seed, grammar)

    async def run(self, journal: JsonlJournal) -> Summary:
        self._loop = asyncio.get_running_loop()
        self._journal_ids = set(journal.ids)
        resumed = journal.records() if journal.ids else []
        self._accept(resumed)
        self._pending.clear()  # already in the journal
        self.summary.resumed = len(self.accepted)
        await self.strategy.prepare(self.ask)
        state = RunState(count=self.options.count, accepted=self.accepted)
        if self.batch is not None:  # the provider's batch API; replies become records through _records_from
            return await BatchRunner(self, self.batch).run(state, journal)
        in_flight: set[asyncio.Task[tuple[GenRequest, Completion | None]]] = set()
        # Finished tasks arrive on a queue: asyncio.wait(FIRST_COMPLETED) would cost O(in flight) per reply.
        finished: asyncio.Queue[asyncio.Task[tuple[GenRequest, Completion | None]]] = asyncio.Queue()
        last_flush = time.monotonic()
        try:
            while True:
                while self._gate_due(len(in_flight)):
                    await self._gate()
                waiting_on_round = False
                while len(in_flight) < self.options.concurrency and self._should_issue(state):
                    batch = self.strategy.next_requests(state, self.options.concurrency - len(in_flight))
                    if not batch:
                        waiting_on_round = True
                        break
                    for request in batch:
                        task = asyncio.create_task(self._one(request))
                        task.add_done_callback(finished.put_nowait)
                        in_flight.add(task)
                        self._order.append(request.sample_index)
                        state.issued += 1
                    state.in_flight = len(in_flight)
                if not in_flight:
                    if (
                        waiting_on_round
                        and self.summary.stop_reason is None
                        and len(self.accepted) < state.count
                    ):
                        self.summary.stop_reason = (
                            f"strategy {self.strategy.name!r} has nothing more to ask "
                            f"({len(self.accepted)} of {state.count} records)"
                        )
                    break
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                for task in done:
                    in_flight.discard(task)
                    request, completion = task.result()
                    state.completed += 1
                    self._ready[request.sample_index] = []
                    if completion is None:
                        if self.summary.stop_reason and self.summary.stop_reason.startswith("budget"):
                            continue  # not sent at all
                        self.summary.failed += 1
                        self.summary.drops[REQUEST_FAILED] += 1
                        self._consecutive_failures += 1
                        continue
                    self._consecutive_failures = 0
                    self._ready[request.sample_index] = self._records_from(request, completion)
                self._release()
                state.in_flight = len(in_flight)
                if waiting_on_round and not in_flight:
                    state.round += 1
                now = time.monotonic()
                if len(self._pending) >= JOURNAL_FLUSH_RECORDS or now - last_flush >= JOURNAL_FLUSH_S:
                    journal.append(self._pending)
                    self._pending.clear()
                    last_flush = now
                if self.on_progress:
                    self.summary.records = len(self.accepted)
                    self.on_progress(self.summary)
                if self._fatal:
                    for task in in_flight:
                        task.cancel()
                    break
        finally:
            journal.append(self._pending)
            self._pending.clear()
            self.cache.close()
        if self._fatal:
            raise UserError(f"the provider refused the request: {self._fatal}")
        self.summary.records = len(self.accepted)
        self.summary.seconds = time.monotonic() - self.started
        return self.summary


def prepare_gate(options: GenOptions) -> float:
    """Before the first request: check the gate's check names, read its word lists and load its judge
    model, so an unknown name, missing benchmark data or an unloadable judge_model is an error now, not
    after minutes of generation. Returns the seconds the judge took to load."""
    if not options.gate_on:
        return 0.0
    specs = enabled_checks(options.verify_options)
    load_lexicon()  # the form and model checks swap terms with bias-bench's CDA word lists
    if not any(spec.family == "model" for spec in specs):
        return 0.0
    started = time.monotonic()
    from vdata.generate.verify.judge import load_judge
    from vdata.lm.models import DEFAULT_MODEL

    load_judge(options.judge_model or DEFAULT_MODEL)
    return time.monotonic() - started


def generate(
    options: GenOptions,
    out: Path,
    *,
    api_key: str | None = None,
    progress: ProgressFactory = no_progress,
    log: Callable[[str], None] | None = None,
) -> Summary:
    """Run `vdata gen`: validate everything that can fail before the first request, then generate.

    Returns the summary (with the records written in `written`); `progress` draws the run, `log` gets
    warnings such as a request that failed after its retries (never the API key)."""
    fmt = format_for(out, options.format)
    check_writable(out)
    key = resolve_api_key(options, api_key)
    batch = make_batch_client(options, key) if options.batch else None  # before anything is written
    strategy_class = get_strategy(options.strategy)
    template = load_template(options.strategy, options.prompts, strategy_class.prompts_file)
    strategy = strategy_class(options, template, out_path=out)
    price_for(options)  # an unknown price with a budget is an error now, not after the first request
    judge_load_s = prepare_gate(options)
    journal_file, meta_file = journal_path(out), run_meta_path(out)
    fingerprint = options_fingerprint(options)
    if meta_file.exists() and journal_file.exists():
        old = json.loads(meta_file.read_text(encoding="utf-8")).get("fingerprint")
        if old != fingerprint:
            raise UserError(
                f"{journal_file} holds a partial run made with different options; rerun with the same options "
                f"to resume it, or delete {journal_file} and {meta_file} to start afresh"
            )
    write_json_atomic(
        meta_file,
        {"fingerprint": fingerprint, "options": options.model_dump(mode="json", include=set(_CONTENT_KEYS))},
    )
    provider = make_provider(options, key)

    async def _main(on_progress: Callable[[Summary], None]) -> Summary:
        engine = Engine(
            options, out, provider, strategy, api_key=key, on_progress=on_progress, log=log, batch=batch
        )
        engine.summary.judge_load_seconds = judge_load_s
        try:
            with JsonlJournal(journal_file) as journal:
                return await engine.run(journal)
        finally:
            await provider.aclose()
            if batch is not None:
                await batch.aclose()

    with (
        progress("gen", options.count, "rec") as task,
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
    ):
        summary = runner.run(_main(SummaryProgress(task)))
    records = JsonlJournal(journal_file)
    try:
        final = records.records()[: options.count]
    finally:
        records.close()
    write_records(final, out, fmt)
    summary.records = len(final)
    summary.written = final
    if summary.complete:
        for p in (journal_file, meta_file, batch_journal_path(out)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    return summary
