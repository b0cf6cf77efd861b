"""`"batch": true`: OpenAI's Batch API and Gemini's batch mode against a loopback server that speaks both."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from generate.batch_stub import BatchStub, BatchStubConfig
from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.generate.batch.base import BatchItem, split_jobs
from vdata.generate.batch.journal import batch_journal_path
from vdata.generate.cli import print_summary
from vdata.generate.cost import price_for
from vdata.generate.engine import generate, journal_path
from vdata.generate.options import parse_options

PRICES = {"input_per_mtok": 1.0, "output_per_mtok": 4.0}


@pytest.fixture
def batch_stub() -> Iterator[Callable[..., BatchStub]]:
    started: list[BatchStub] = []

    def start(**kwargs: Any) -> BatchStub:
        server = BatchStub(BatchStubConfig(**kwargs)).start_in_thread()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


def batch_options(server: BatchStub, provider: str = "openai", **kw: Any):
    model = "stub" if provider == "openai" else "gemini-2.0-flash"
    base = {
        "provider": provider,
        "model": model,
        "base_url": server.base_url if provider == "openai" else server.gemini_url,
        "strategy": "simple",
        "count": 20,
        "per_request": 2,
        "concurrency": 4,
        "max_retries": 2,
        "timeout_s": 5,
        "batch": True,
        "prices": {model: PRICES},
        **kw,
    }
    base["batch_options"] = {"poll_seconds": 0.01, **kw.get("batch_options", {})}
    return parse_options(base)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_batch_run_makes_the_records_at_half_the_online_price(
    batch_stub, gen_cache: Path, tmp_path: Path, provider: str
) -> None:
    server = batch_stub()
    summary = generate(batch_options(server, provider), tmp_path / "b.jsonl", api_key="sk-batch-secret")
    records = read_records(tmp_path / "b.jsonl")
    assert summary.complete and len(records) == 20 == len({r.id for r in records})
    assert all(r.provider == provider for r in records)
    assert server.creations[provider] == summary.batch_jobs >= 1 and server.online_requests == 0
    assert summary.batch_requests == server.requests_in_jobs() == summary.requests
    # Known answer: the stand-in reports the tokens; the batch price is half of 1.0/4.0 per million.
    expected = (summary.prompt_tokens * 0.5 + summary.completion_tokens * 2.0) / 1e6
    assert summary.prompt_tokens > 0 and summary.cost_usd == pytest.approx(expected)
    assert any("sk-batch-secret" in a for a in server.authorizations)
    assert not batch_journal_path(tmp_path / "b.jsonl").exists()  # a complete run leaves no journals

    # The same run online (fresh cache) gets the same records and pays the online price.
    online = batch_options(server, provider, batch=False)
    gen_cache_2 = tmp_path / "cache2"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDATA_CACHE_DIR", str(gen_cache_2))
        online_summary = generate(online, tmp_path / "o.jsonl", api_key="k")
    assert [r.id for r in read_records(tmp_path / "o.jsonl")] == [r.id for r in records]
    online_expected = (online_summary.prompt_tokens * 1.0 + online_summary.completion_tokens * 4.0) / 1e6
    assert online_summary.cost_usd == pytest.approx(online_expected)


def test_summary_table_shows_batch_jobs_and_prices(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    from rich.console import Console

    server = batch_stub()
    summary = generate(batch_options(server), tmp_path / "b.jsonl", api_key="k")
    console = Console(record=True, width=200)
    print_summary(console, summary)
    text = console.export_text()
    assert f"{summary.batch_jobs} jobs submitted" in text and "requests at batch prices" in text
    assert f"${summary.cost_usd:.4f}" in text


def test_jobs_are_split_at_the_request_limit(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    server = batch_stub()
    o = batch_options(server, count=30, batch_options={"max_requests_per_job": 4})
    summary = generate(o, tmp_path / "b.jsonl", api_key="k")
    sizes = [len(j.requests) for j in server.jobs.values()]
    assert summary.complete and max(sizes) == 4 and len(sizes) >= 4
    assert len(sizes) == summary.batch_jobs and sum(sizes) == summary.batch_requests


def test_jobs_are_split_at_the_size_limit() -> None:
    items = [BatchItem(f"k{i}", [{"role": "user", "content": "x"}], 0.7, 100, i) for i in range(7)]
    lines = [b"a" * 99] * 7  # 100 bytes with the newline
    parts = list(split_jobs(items, lines, max_requests=50_000, max_bytes=300))
    assert [len(p) for p, _ in parts] == [3, 3, 1]
    assert [it.key for p, _ in parts for it in p] == [it.key for it in items]
    assert [len(p) for p, _ in split_jobs(items, lines, max_requests=2, max_bytes=10_000)] == [2, 2, 2, 1]
    with pytest.raises(UserError, match="more than a batch job may hold"):
        list(split_jobs(items, [b"a" * 400] * 7, max_requests=10, max_bytes=300))


def test_size_limit_splits_a_real_run(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    server = batch_stub()
    limit_mb = 0.0025
    o = batch_options(server, count=12, batch_options={"max_mb_per_job": limit_mb})
    summary = generate(o, tmp_path / "b.jsonl", api_key="k")
    sizes = [j.input_bytes for j in server.jobs.values()]
    assert summary.complete and len(sizes) == summary.batch_jobs >= 2
    assert max(sizes) <= limit_mb * 1024 * 1024 < sum(sizes)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_partial_failures_are_retried_online(
    batch_stub, gen_cache: Path, tmp_path: Path, provider: str
) -> None:
    server = batch_stub(scenarios=["partial"])
    summary = generate(batch_options(server, provider), tmp_path / "b.jsonl", api_key="k")
    failed_lines = sum(len(j.requests) // 3 for j in server.jobs.values())
    assert failed_lines >= 1 and server.online_requests == failed_lines == summary.retries
    assert summary.complete and len(read_records(tmp_path / "b.jsonl")) == 20 and summary.failed == 0
    label = "HTTP 500 server_error" if provider == "openai" else "Gemini error 13"
    assert summary.errors[label] == failed_lines


def test_partial_failures_are_retried_in_a_new_batch(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    server = batch_stub(scenarios=["partial", "ok"])
    o = batch_options(server, batch_options={"retry": "batch"})
    summary = generate(o, tmp_path / "b.jsonl", api_key="k")
    first, second = list(server.jobs.values())[:2]
    failed_ids = {first.requests[i]["custom_id"] for i in range(2, len(first.requests), 3)}
    assert {r["custom_id"] for r in second.requests} == failed_ids  # only the failed ones, once more
    assert server.online_requests == 0 and summary.complete and summary.failed == 0


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_expired_job_is_retried(batch_stub, gen_cache: Path, tmp_path: Path, provider: str) -> None:
    server = batch_stub(scenarios=["expired", "ok"])
    o = batch_options(server, provider, batch_options={"retry": "batch"})
    summary = generate(o, tmp_path / "b.jsonl", api_key="k")
    first, second = list(server.jobs.values())[:2]
    # OpenAI returns what finished before expiry (the first half); Gemini returns nothing.
    missed = len(first.requests) - len(first.requests) // 2 if provider == "openai" else len(first.requests)
    assert len(second.requests) == missed and summary.complete and summary.failed == 0
    label = "batch_expired" if provider == "openai" else "batch JOB_STATE_EXPIRED"
    assert summary.errors[label] == missed


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_failed_job_without_retries_is_counted_and_kept_for_a_rerun(
    batch_stub, gen_cache: Path, tmp_path: Path, provider: str
) -> None:
    server = batch_stub(scenarios=["failed"])
    logged: list[str] = []
    o = batch_options(server, provider, count=6, batch_options={"retry": "none"})
    summary = generate(o, tmp_path / "b.jsonl", api_key="k", log=logged.append)
    assert not summary.complete and summary.failed >= server.requests_in_jobs() > 0
    for job in server.jobs.values():  # every job's end is reported, with what it left unanswered
        n = len(job.requests)
        assert any(f"{job.id} ended" in line and f"failed with {n} of {n}" in line.lower() for line in logged)
    assert provider == "gemini" or any("the input file failed validation" in line for line in logged)
    assert journal_path(tmp_path / "b.jsonl").exists() and batch_journal_path(tmp_path / "b.jsonl").exists()


def test_cancelled_job_keeps_what_it_finished(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    server = batch_stub(scenarios=["cancelled"])
    summary = generate(batch_options(server), tmp_path / "b.jsonl", api_key="k")
    first = next(iter(server.jobs.values()))
    assert server.online_requests >= len(first.requests) - len(first.requests) // 2
    assert summary.complete and summary.errors["batch cancelled"] >= 1


def test_budget_is_reserved_at_batch_prices_and_never_exceeded(
    batch_stub, gen_cache: Path, tmp_path: Path
) -> None:
    server = batch_stub()
    prices = {"stub": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}
    budget = 0.003
    o = batch_options(server, count=1000, max_tokens=300, budget_usd=budget, prices=prices)
    summary = generate(o, tmp_path / "b.jsonl", api_key="k")
    assert (
        not summary.complete
        and "budget" in (summary.stop_reason or "")
        and "batch prices" in summary.stop_reason
    )
    assert 0 < summary.cost_usd <= budget
    # Worst case per request: (prompt estimate + 300) tokens at $0.5/M. Every submitted request fits the budget,
    # and so many were submitted that the online price (double) would not have allowed them.
    price = price_for(o, batch=True)
    assert price is not None and price.input_per_mtok == 0.5
    submitted = server.requests_in_jobs()
    assert submitted * 300 * 0.5 / 1e6 <= budget < submitted * 300 * 1.0 / 1e6
    assert 0 < len(read_records(tmp_path / "b.jsonl")) < 1000


def test_progress_shows_the_jobs_while_polling(batch_stub, gen_cache: Path, tmp_path: Path) -> None:
    from contextlib import contextmanager

    infos: list[str] = []

    class Task:
        def update(self, **kw: Any) -> None:
            if kw.get("info"):
                infos.append(kw["info"])

    @contextmanager
    def progress(*_a: Any, **_k: Any) -> Iterator[Task]:
        yield Task()

    server = batch_stub(polls_per_state=3)
    o = batch_options(server, batch_options={"poll_seconds": 0.11})
    generate(o, tmp_path / "b.jsonl", api_key="k", progress=progress)
    assert any("batch: 1 job(s) waiting: in_progress 0/" in i for i in infos)


def test_batch_needs_a_provider_with_a_batch_api(tmp_path: Path) -> None:
    o = parse_options({"provider": "local", "batch": True})
    with pytest.raises(UserError, match=r"not available for provider 'local'.*'gemini', 'openai'"):
        generate(o, tmp_path / "b.jsonl")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_batch_prices_from_the_table_and_the_options() -> None:
    o = parse_options({"provider": "openai", "model": "gpt-4o-mini"})
    online, batch = price_for(o), price_for(o, batch=True)
    assert online is not None and batch is not None
    assert (batch.input_per_mtok, batch.output_per_mtok) == (0.075, 0.30)
    assert math.isclose(batch.cost(1_000_000, 1_000_000), online.cost(1_000_000, 1_000_000) / 2)
    given = parse_options(
        {
            "provider": "openai",
            "model": "m",
            "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2, "batch_output_per_mtok": 0.25}},
        }
    )
    p = price_for(given, batch=True)
    assert p is not None and (p.input_per_mtok, p.output_per_mtok) == (0.5, 0.25)
