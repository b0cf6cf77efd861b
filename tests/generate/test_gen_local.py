"""The embedded local model, for real: `vdata gen` end to end, and batched transformers generation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.generate.options import parse_options
from vdata.generate.providers import PROVIDERS
from vdata.generate.providers.base import Completion
from vdata.generate.providers.local import (
    MAX_SLOTS,
    LlamaCppProvider,
    TransformersProvider,
    choose_backend,
    q8_0_copy,
    q8_0_path,
    xllamacpp_available,
)
from vdata.generate.strategies import get_strategy
from vdata.generate.templates import load_template
from vdata.lm.models import smollm2_gguf_path

pytestmark = pytest.mark.slow
needs_llamacpp = pytest.mark.skipif(not xllamacpp_available(), reason="xllamacpp not installed")

PROMPTS = [
    [{"role": "user", "content": "Write one sentence about a brave nurse."}],
    [
        {"role": "system", "content": "You answer briefly."},
        {
            "role": "user",
            "content": "Name three colours that are common in national flags, separated by commas.",
        },
    ],
]


@pytest.fixture(scope="session")
def q8_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding the Q8_0 copy of the shipped model, converted once for the session."""
    cache = tmp_path_factory.mktemp("q8-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDATA_CACHE_DIR", str(cache))
        q8_0_copy(smollm2_gguf_path())
    return cache


@pytest.fixture
def llama_cache(q8_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VDATA_CACHE_DIR", str(q8_cache))
    return q8_cache


def targeted_requests(n: int) -> tuple[Any, list[Any]]:
    """The `targeted` strategy and its first `n` gender requests, as `vdata gen` builds them."""
    options = parse_options({"categories": ["gender"], "terms": {"gender": ["woman", "man", "aunt", "son"]}})
    strategy = get_strategy("targeted")(options, load_template("targeted", None))
    strategy.terms = {"gender": options.terms["gender"]}
    return strategy, [strategy.build_request(i) for i in range(n)]


@needs_llamacpp
def test_vdata_gen_with_the_local_model_end_to_end(tmp_path: Path, q8_cache: Path) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"categories": ["gender"], "count": 3, "concurrency": 4, "seed": 1}))
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    converted = next((q8_cache / "models").glob("*.q8_0.gguf"))
    (cache / "models" / converted.name).symlink_to(converted)  # reuse the session's conversion
    env = {**os.environ, "VDATA_CACHE_DIR": str(cache), "VDATA_CONTRIBUTE": "never"}
    out = tmp_path / "gender.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "vdata.cli", "gen", str(out), str(opts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert r.returncode == 0, r.stderr
    assert "records" in r.stdout and "3 of 3" in r.stdout and "dropped" in r.stdout
    records = read_records(out)
    assert len(records) == 3 == len({x.id for x in records})
    for rec in records:
        assert rec.target.lower() in rec.text.lower() and " " not in rec.attribute
        assert rec.provider == "local" and rec.model == "smollm2-135m" and rec.strategy == "targeted"
        assert rec.category == "gender" and len(rec.prompt_sha256) == 64 and rec.created_at.endswith("Z")


def test_batched_generation_matches_one_at_a_time(smollm2) -> None:
    provider = TransformersProvider("smollm2-135m", batch_size=8, loaded=smollm2)
    batched = provider.generate_batch(PROMPTS, temperature=0.0, max_tokens=16, seed=0)
    single = [provider.generate_batch([p], temperature=0.0, max_tokens=16, seed=0)[0] for p in PROMPTS]
    for b, s in zip(batched, single, strict=True):
        assert b.text == s.text and b.text
        assert b.prompt_tokens == s.prompt_tokens and b.completion_tokens == s.completion_tokens


def test_transformers_backend_batches_concurrent_requests(smollm2) -> None:
    provider = TransformersProvider("smollm2-135m", batch_size=4, loaded=smollm2)
    calls: list[int] = []
    original = provider.generate_batch

    def counting(messages, *a, **kw):  # observe batch sizes; generation itself is the real one
        calls.append(len(messages))
        return original(messages, *a, **kw)

    provider.generate_batch = counting  # type: ignore[method-assign]

    async def go():
        outs = await asyncio.gather(
            *[provider.complete(PROMPTS[i % 2], temperature=0.7, max_tokens=12, seed=i) for i in range(4)]
        )
        await provider.aclose()
        return outs

    outs = asyncio.run(go())
    assert len(outs) == 4 and all(o.completion_tokens > 0 for o in outs)
    assert calls == [4]


@needs_llamacpp
def test_requests_in_flight_share_the_slots_and_make_the_same_kind_of_records(llama_cache: Path) -> None:
    provider = LlamaCppProvider("smollm2-135m", parallel=4, threads=1, max_tokens=96)
    assert provider.gguf.name.endswith(".q8_0.gguf")
    strategy, requests = targeted_requests(8)
    # Unconstrained, the 135M model gets about half its lines into the format (the first two requests'
    # replies parse none), so four go alone.
    alone_requests = requests[:4]
    active, most = 0, 0
    lock = threading.Lock()
    original = provider.server.handle_chat_completions

    def observed(body: dict[str, object]) -> dict[str, object]:  # counts calls inside llama.cpp at once
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            return original(body)
        finally:
            with lock:
                active -= 1

    provider.server = type("Observed", (), {"handle_chat_completions": staticmethod(observed)})()

    def ask(r: Any) -> Any:
        return provider.complete(r.messages, temperature=0.7, max_tokens=96, seed=r.sample_index)

    async def go() -> tuple[list[Completion], list[Completion]]:
        one = [await ask(r) for r in alone_requests]
        assert most == 1
        many = await asyncio.gather(*[ask(r) for r in requests])
        await provider.aclose()
        return one, list(many)

    one, many = asyncio.run(go())
    assert most == 4  # 8 requests, 4 slots: all slots busy at once, never more
    for completion in [*one, *many]:
        assert completion.completion_tokens > 0 and completion.prompt_tokens > 100
        assert completion.finish_reason in ("stop", "length")

    def triples(completions: list[Completion], reqs: list[Any]) -> list[Any]:
        return [t for c, r in zip(completions, reqs, strict=True) for t in strategy.parse(c.text, r).triples]

    alone, together = triples(one, alone_requests), triples(many, requests)
    # Batched decoding is not bit-identical across runs, so how many of the 8 answers parse varies (3-5 of 8 seen);
    # garbled slots would parse none.
    assert alone and len(together) >= 2
    assert {type(t) for t in alone} == {type(t) for t in together}
    for t in [*alone, *together]:
        assert t.text and t.target and t.attribute


def test_a_constrained_reply_is_every_line_the_strategy_asked_for(llama_cache: Path) -> None:
    """With the targeted strategy's grammar the real model's replies parse whole: one line per sentence
    asked for, each naming its requested term in its sentence, a one-word adjective (without it this
    model loses a fair share of its lines to the format)."""
    # Room for three lines at the grammar's longest (120 characters a sentence), so none is cut off.
    provider = LlamaCppProvider("smollm2-135m", parallel=4, threads=1, max_tokens=480)
    strategy, requests = targeted_requests(4)

    async def go() -> list[Completion]:
        replies = await asyncio.gather(
            *[
                provider.complete(
                    r.messages,
                    temperature=0.7,
                    max_tokens=480,
                    seed=r.sample_index,
                    grammar=strategy.reply_grammar(r),
                )
                for r in requests
            ]
        )
        await provider.aclose()
        return list(replies)

    for reply, request in zip(asyncio.run(go()), requests, strict=True):
        lines = reply.text.strip().splitlines()
        assert len(lines) == strategy.options.per_request == 3, reply.text
        wanted = [request.context["terms"][i % 3] for i in range(3)]
        assert [line.split(" | ")[1] for line in lines] == wanted, reply.text
        extraction = strategy.parse(reply.text, request)
        assert sum(extraction.drops.values()) + len(extraction.triples) == 3
        assert not {"unparseable", "target_not_in_text", "target_not_in_category"} & set(extraction.drops)


@needs_llamacpp
def test_slots_and_context_follow_the_options(llama_cache: Path) -> None:
    spec = PROVIDERS.get("local")
    wide = spec.factory(parse_options({"concurrency": 100, "max_tokens": 1000}), None)
    assert isinstance(wide, LlamaCppProvider)
    assert wide.parallel == MAX_SLOTS and wide.slot_context == 2048  # 864 prompt room + 1000, in 256s
    small = spec.factory(parse_options({"concurrency": 3}), None)
    assert isinstance(small, LlamaCppProvider) and small.parallel == 3 and small.slot_context == 1024
    asyncio.run(wide.aclose())
    asyncio.run(small.aclose())


def test_bad_local_options_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"slots must be 1\.\.64"):
        LlamaCppProvider("smollm2-135m", parallel=0)
    with pytest.raises(UserError, match="not found"):
        choose_backend(str(tmp_path / "missing.gguf"), "auto")
    if xllamacpp_available():
        with pytest.raises(UserError, match="needs a GGUF model"):
            choose_backend("HuggingFaceTB/SmolLM2-135M-Instruct", "xllamacpp")
    with pytest.raises(UserError, match="backend 'fast' does not apply"):
        parse_options({"backend": "fast"})


def test_q8_0_copy_keeps_every_weight(llama_cache: Path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize

    source = smollm2_gguf_path()
    copy = q8_0_copy(source)
    assert copy == q8_0_path(source) and copy.is_file()
    mtime = copy.stat().st_mtime_ns
    assert q8_0_copy(source).stat().st_mtime_ns == mtime  # converted once, then reused
    a, b = GGUFReader(source), GGUFReader(copy)
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    assert not any(t.tensor_type == GGMLQuantizationType.Q4_1 for t in b.tensors)
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        wa, wb = dequantize(ta.data, ta.tensor_type), dequantize(tb.data, tb.tensor_type)
        assert wa.shape == wb.shape
        if ta.tensor_type == GGMLQuantizationType.Q4_1:
            # Q8_0 rounds to steps of (block max |w|) / 127: half a step from the Q4_1 value, plus up to
            # 127 x the float16 rounding of the stored step (2^-11 of it) at the block's ends.
            blocks_a = wa.reshape(-1, 32)
            step = np.abs(blocks_a).max(axis=1, keepdims=True) / 127
            assert np.all(np.abs(wb.reshape(-1, 32) - blocks_a) <= step * (0.5 + 128 / 2048) + 1e-8)
        else:
            assert np.array_equal(wa, wb)
    assert q8_0_copy(copy) == copy  # nothing to re-encode: used as it is
