"""The embedded local model, for real: `vdata gen` end to end, and batched transformers generation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vdata.core.io import read_records
from vdata.generate.providers.local import TransformersProvider, xllamacpp_available

pytestmark = pytest.mark.slow

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


@pytest.mark.skipif(not xllamacpp_available(), reason="xllamacpp not installed")
def test_vdata_gen_with_the_local_model_end_to_end(tmp_path: Path) -> None:
    opts = tmp_path / "o.json"
    opts.write_text(json.dumps({"categories": ["gender"], "count": 3, "concurrency": 4, "seed": 1}))
    env = {**os.environ, "VDATA_CACHE_DIR": str(tmp_path / "cache"), "VDATA_CONTRIBUTE": "never"}
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
