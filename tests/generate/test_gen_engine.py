"""The engine and the openai provider against a real loopback OpenAI-compatible server with injected faults."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.core.ratelimit import TokenBucket
from vdata.core.retry import backoff_delay
from vdata.generate.cli import run_gen
from vdata.generate.engine import generate, journal_path
from vdata.generate.options import parse_options
from vdata.generate.providers.base import ProviderError
from vdata.generate.providers.openai_provider import OpenAIProvider
from vdata.generate.strategies import GenRequest, RunState, Strategy, register
from vdata.generate.strategy_registry import STRATEGIES

MSG = [{"role": "user", "content": "Write 2 sentences that break gender stereotypes about: woman, man."}]


def opts(server, **kw: object):
    base = {
        "provider": "openai",
        "model": "stub",
        "base_url": server.base_url,
        "count": 20,
        "concurrency": 4,
        "timeout_s": 2,
        "max_retries": 4,
    }
    return parse_options({**base, **kw})


BACKENDS = ["aiohttp", "sdk"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_provider_parses_a_completion(stub, backend: str) -> None:
    server = stub()
    p = OpenAIProvider("stub", "sk-x", server.base_url, timeout_s=5, backend=backend)
    assert p.transport == backend
    c = await p.complete(MSG, temperature=0.5, max_tokens=100, seed=7)
    await p.aclose()
    assert c.text.count("\n") == 1 and "team 7-0" in c.text
    assert c.prompt_tokens > 0 and c.completion_tokens > 0


async def test_both_backends_send_the_sdks_request(stub) -> None:
    """The aiohttp path sends what the SDK's own path sends: path, auth, JSON body, SDK identity."""
    seen = {}
    for backend in BACKENDS:
        server = stub()
        p = OpenAIProvider("stub", "sk-secret", server.base_url, timeout_s=5, backend=backend)
        await p.complete(MSG, temperature=0.5, max_tokens=100, seed=3)
        await p.aclose()
        path, headers, body = server.last_request
        seen[backend] = (
            path,
            {k: headers[k] for k in ("authorization", "content-type", "x-stainless-lang")},
            body,
        )
        assert headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert seen["aiohttp"] == seen["sdk"]
    path, headers, body = seen["aiohttp"]
    assert path == "/v1/chat/completions" and headers["authorization"] == "Bearer sk-secret"
    assert json.loads(body) == {
        "model": "stub",
        "messages": MSG,
        "temperature": 0.5,
        "max_tokens": 100,
        "seed": 3,
    }


def test_backend_must_fit_the_provider() -> None:
    with pytest.raises(UserError, match="backend 'sdk' does not apply to provider 'local'"):
        parse_options({"provider": "local", "backend": "sdk"})
    with pytest.raises(UserError, match="allowed: auto, aiohttp, sdk"):
        parse_options({"provider": "openai", "base_url": "http://x/v1", "backend": "xllamacpp"})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("fault", "status", "retryable"),
    [
        ("429", 429, True),
        ("500", 500, True),
        ("malformed", None, True),
        ("timeout", None, True),
        ("401", 401, False),
    ],
)
async def test_provider_maps_faults(
    stub, fault: str, status: int | None, retryable: bool, backend: str
) -> None:
    server = stub(faults=[fault], retry_after_s=3, timeout_hang_s=5)
    p = OpenAIProvider("stub", "sk-x", server.base_url, timeout_s=0.5, backend=backend)
    with pytest.raises(ProviderError) as info:
        await p.complete(MSG, temperature=0.5, max_tokens=100, seed=1)
    await p.aclose()
    assert info.value.status == status and info.value.retryable is retryable
    if fault == "429":
        assert info.value.retry_after == 3.0
    if status is not None:  # the server's own message, never the key
        assert "sk-x" not in str(info.value) and str(status) in str(info.value)
    if fault == "401":
        assert "invalid api key" in str(info.value) and "check the API key" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_provider_reports_a_refused_connection(free_port, backend: str) -> None:
    p = OpenAIProvider("stub", "sk-x", f"http://127.0.0.1:{free_port}/v1", timeout_s=2, backend=backend)
    with pytest.raises(ProviderError, match="connection failed") as info:
        await p.complete(MSG, temperature=0.5, max_tokens=10, seed=1)
    await p.aclose()
    assert info.value.retryable


def test_run_survives_429_500_timeout_malformed(stub, gen_cache, tmp_path: Path) -> None:
    server = stub(
        faults=["ok", "429", "ok", "500", "timeout", "ok", "malformed", "refusal"], timeout_hang_s=3
    )
    out = tmp_path / "out.jsonl"
    # The fault cycle is shared by the 4 concurrent requests, so one request can meet several faults in a row
    # depending on interleaving; enough retries make exhaustion impossible here (it is tested on its own).
    summary = generate(opts(server, timeout_s=0.5, max_retries=20), out, api_key="sk-x")
    records = read_records(out)
    assert len(records) == 20 == len({r.id for r in records})
    assert summary.complete and summary.retries >= 4 and summary.failed == 0
    assert {"HTTP 429", "HTTP 500", "request timed out"} <= set(summary.errors)
    assert any(k.startswith("malformed") for k in summary.errors)
    assert summary.drops["refusal"] >= 1
    assert not journal_path(out).exists()  # a complete run cleans up its journal


def test_retry_after_is_honoured(stub, gen_cache, tmp_path: Path) -> None:
    server = stub(faults=["429", "ok"], retry_after_s=1.0)
    t0 = time.monotonic()
    generate(
        opts(server, count=2, per_request=2, concurrency=1, strategy="simple"),
        tmp_path / "o.jsonl",
        api_key="k",
    )
    assert time.monotonic() - t0 >= 1.0
    assert server.outcomes == {"429": 1, "ok": 1}


def test_failures_after_retries_are_recorded_not_fatal(stub, gen_cache, tmp_path: Path) -> None:
    server = stub(faults=["500", "ok"])
    summary = generate(
        opts(server, max_retries=0, count=10, per_request=2, concurrency=1),
        tmp_path / "o.csv",
        api_key="k",
    )
    assert summary.complete and summary.failed >= 4 and summary.drops["request_failed"] == summary.failed
    assert len(read_records(tmp_path / "o.csv")) == 10


def test_auth_error_stops_the_run_with_a_clear_message(stub, gen_cache, tmp_path: Path) -> None:
    server = stub(faults=["401"])
    with pytest.raises(UserError, match="401"):
        generate(opts(server), tmp_path / "o.jsonl", api_key="sk-bad")
    assert server.requests == 1


def test_rerun_is_served_from_cache(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    first = generate(opts(server, count=12), tmp_path / "a.jsonl", api_key="k")
    sent = server.requests
    second = generate(opts(server, count=12), tmp_path / "b.parquet", api_key="k")
    assert server.requests == sent and second.requests == 0 and second.cached >= first.requests
    a, b = read_records(tmp_path / "a.jsonl"), read_records(tmp_path / "b.parquet")
    assert {r.id for r in a} == {r.id for r in b}


def test_budget_stops_before_it_is_exceeded(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    # ~ $0.0004 worst case per request at these prices; the budget allows a handful of requests.
    o = opts(
        server,
        count=1000,
        budget_usd=0.003,
        max_tokens=300,
        prices={"stub": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}},
    )
    summary = generate(o, tmp_path / "o.jsonl", api_key="k")
    assert not summary.complete and "budget" in (summary.stop_reason or "")
    assert 0 < summary.cost_usd <= 0.003
    assert 0 < len(read_records(tmp_path / "o.jsonl")) < 1000
    assert journal_path(tmp_path / "o.jsonl").exists()  # kept, so a bigger budget can resume


def test_unknown_price_with_budget_is_a_user_error(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    with pytest.raises(UserError, match="no price known"):
        generate(opts(server, budget_usd=1.0), tmp_path / "o.jsonl", api_key="k")
    assert server.requests == 0


def test_rpm_limit_spaces_requests(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    t0 = time.monotonic()
    # rpm 600 = 10/s with a burst of 10 requests: 26 requests need >= 1.6 s.
    generate(
        opts(server, count=52, per_request=2, concurrency=8, rate_limit={"rpm": 600}),
        tmp_path / "o.jsonl",
        api_key="k",
    )
    assert server.requests >= 26 and time.monotonic() - t0 >= 1.5


async def test_token_bucket_rate() -> None:
    bucket = TokenBucket(rate_per_s=100, capacity=10)
    t0 = time.monotonic()
    for _ in range(40):
        await bucket.acquire(1)
    assert 0.28 <= time.monotonic() - t0 < 2.0


def test_backoff_grows_and_honours_retry_after() -> None:
    import random

    rng = random.Random(0)
    assert all(backoff_delay(0, None, rng=rng) <= 0.5 for _ in range(50))
    assert max(backoff_delay(5, None, rng=rng) for _ in range(50)) > 2.0
    assert backoff_delay(0, 7.0, rng=rng) >= 7.0


def test_api_key_never_leaks(stub, gen_cache, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    secret = "sk-vdata-SECRET-7c1e9a"
    server = stub(faults=["ok", "500", "429"])
    out = tmp_path / "out.jsonl"
    run_gen(opts(server, count=10, max_retries=2), out, api_key=secret, quiet=False)
    assert f"Bearer {secret}" in server.authorizations  # it was really used
    bad = stub(faults=["401"])
    with pytest.raises(UserError) as info:
        run_gen(opts(bad), tmp_path / "bad.jsonl", api_key=secret, quiet=False)
    captured = capfd.readouterr()
    assert secret not in str(info.value) and secret not in captured.out + captured.err
    for path in [*tmp_path.rglob("*"), *gen_cache.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_strategies_against_the_stub(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    for strategy in ("targeted", "general", "simple", "attributed"):
        out = tmp_path / f"{strategy}.jsonl"
        generate(
            opts(server, strategy=strategy, count=6, per_request=2, categories=["race+gender", "religion"]),
            out,
            api_key="k",
        )
        records = read_records(out)
        assert len(records) == 6 and all(r.strategy == strategy for r in records)
        if strategy == "general":
            assert {r.category for r in records} == {"general"}
        else:
            assert sorted(r.category for r in records) == ["race+gender"] * 3 + ["religion"] * 3
        if strategy == "attributed":
            assert all(set(r.attributes or {}) >= {"length", "tone", "setting"} for r in records)
            assert len({json.dumps(r.attributes, sort_keys=True) for r in records}) > 1


def test_targeted_uses_given_terms_and_asks_for_others(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    out = tmp_path / "t.jsonl"
    generate(
        opts(server, count=8, terms={"religion": ["rabbi", "imam"]}, categories=["religion"]),
        out,
        api_key="k",
    )
    assert {r.target for r in read_records(out)} <= {"rabbi", "imam"}


def test_attributed_proposes_values_once_and_reuses_them(stub, gen_cache, tmp_path: Path) -> None:
    server = stub()
    out = tmp_path / "a.jsonl"
    generate(opts(server, strategy="attributed", propose_attributes=True, count=4), out, api_key="k")
    saved = json.loads((tmp_path / "a.jsonl.attributes.json").read_text())
    assert saved["tone"] == ["short", "formal", "cheerful", "rural", "urban"]
    (tmp_path / "a.jsonl.attributes.json").write_text(json.dumps({"mood": ["sunny", "grey"]}))
    generate(
        opts(server, strategy="attributed", propose_attributes=True, count=4),
        tmp_path / "b.jsonl",
        api_key="k",
    )
    # b has its own default attributes file; pointing attributes_file at a's reuses the edited values
    generate(
        opts(
            server,
            strategy="attributed",
            attributes_file=str(tmp_path / "a.jsonl.attributes.json"),
            count=4,
            seed=5,
        ),
        tmp_path / "c.jsonl",
        api_key="k",
    )
    assert all(set(r.attributes or {}) == {"mood"} for r in read_records(tmp_path / "c.jsonl"))


class TwoRounds(Strategy):
    """A multi-round strategy (like loss-guided prompting): round 2 quotes records accepted in round 1."""

    name = "test_two_rounds"

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.seen_in_round: dict[int, int] = {}

    def next_requests(self, state: RunState, n: int) -> list[GenRequest]:
        if state.round in self.seen_in_round:
            return []  # wait for this round's requests to finish
        self.seen_in_round[state.round] = len(state.accepted)
        hint = state.accepted[-1].text if state.accepted else "none"
        reqs = []
        for _ in range(2):
            messages = [
                {
                    "role": "user",
                    "content": f"Write 2 sentences that break gender stereotypes about: "
                    f"woman, man. Previous: {hint}",
                }
            ]
            reqs.append(GenRequest(messages, self.next_index, "gender"))
            self.next_index += 1
        return reqs


def test_multi_round_strategy_sees_accepted_records(stub, gen_cache, tmp_path: Path, monkeypatch) -> None:
    register(TwoRounds)
    monkeypatch.setattr(
        "vdata.generate.engine.load_template",
        lambda name, prompts: __import__("vdata.generate.templates", fromlist=["x"]).builtin_template(
            "simple"
        ),
    )
    from vdata.core.io import JsonlJournal
    from vdata.generate.engine import Engine

    server = stub()
    o = opts(server, count=8, per_request=2, concurrency=16)
    from vdata.generate.providers import make_provider
    from vdata.generate.templates import builtin_template

    strategy = TwoRounds(o, builtin_template("simple"))
    engine = Engine(o, tmp_path / "x.jsonl", make_provider(o, "k"), strategy)

    async def go():
        with JsonlJournal(tmp_path / "j.jsonl") as j:
            return await engine.run(j)

    summary = asyncio.run(go())
    STRATEGIES.remove("test_two_rounds")
    assert summary.records == 8
    assert strategy.seen_in_round == {0: 0, 1: 4}  # round 2 was planned after round 1's 4 records


def test_gemini_provider_against_a_loopback_generate_content_server(stub, gen_cache, tmp_path: Path) -> None:
    server = stub(faults=["ok", "429", "ok", "500"])
    secret = "gemini-SECRET-key-31337"
    o = parse_options(
        {
            "provider": "gemini",
            "model": "gemini-2.0-flash",
            "base_url": f"http://127.0.0.1:{server.port}",
            "count": 6,
            "per_request": 2,
            "concurrency": 2,
            "budget_usd": 0.5,
        }
    )
    summary = generate(o, tmp_path / "g.jsonl", api_key=secret)
    records = read_records(tmp_path / "g.jsonl")
    assert len(records) == 6 and all(r.provider == "gemini" for r in records)
    assert (summary.retries >= 2 and {"HTTP 429", "HTTP 500"} <= set(summary.errors)) or summary.retries >= 2
    assert secret in server.authorizations
    assert 0 < summary.cost_usd < 0.5 and summary.prompt_tokens > 0
    for path in [*tmp_path.rglob("*"), *gen_cache.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_targeted_keeps_only_terms_of_the_category(gen_cache) -> None:
    from vdata.generate.strategies.targeted import Targeted
    from vdata.generate.templates import builtin_template

    strategy = Targeted(parse_options({"categories": ["gender"]}), builtin_template("targeted"))
    strategy.terms = {"gender": ["woman", "father"]}
    request = strategy.build_request(0)
    reply = (
        "The woman repaired the old tractor alone. | woman | skilled\n"
        "The teacher solved the equation quickly. | teacher | brilliant\n"
        "Both fathers stayed home with the kids. | fathers | nurturing"
    )
    result = strategy.parse(reply, request)
    assert [t.target for t in result.triples] == ["woman", "fathers"]
    assert result.drops == {"target_not_in_category": 1}


def test_targeted_requests_differ_only_in_their_last_line(gen_cache) -> None:
    """Every request shares all its tokens but the terms line, so llama.cpp's per-slot prompt cache
    reuses the rest: the instructions must not follow the terms."""
    from vdata.generate.strategies.targeted import Targeted
    from vdata.generate.templates import builtin_template

    strategy = Targeted(parse_options({"categories": ["gender"]}), builtin_template("targeted"))
    strategy.terms = {"gender": ["woman", "father", "aunt", "son", "bride", "king"]}
    first, *others = [strategy.build_request(i).messages for i in range(4)]
    assert len({m[-1]["content"] for m in [first, *others]}) == 4  # other terms each time
    for messages in others:
        assert messages[:-1] == first[:-1]
        assert "\n" not in messages[-1]["content"]
        assert messages[-1]["content"].startswith("Write 3 sentences that break gender stereotypes about: ")
    assert "word for word" in first[0]["content"]  # the instructions moved into the shared system message


def test_aiohttp_backend_uses_the_proxy_environment_like_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    remote = OpenAIProvider("m", "sk-x", "https://api.example.com/v1", backend="aiohttp")
    local = OpenAIProvider("m", "sk-x", "http://127.0.0.1:8000/v1", backend="aiohttp")
    assert remote._proxy == "http://proxy.example:3128"
    assert local._proxy is None
