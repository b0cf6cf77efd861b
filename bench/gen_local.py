"""Local generation speed: tokens/s with many requests in flight vs one at a time, same run, same server.

xllamacpp (the shipped GGUF, as `vdata gen` runs it: one llama.cpp context, one slot per request in
flight, continuous batching): first every slot serves one short request (in a real run every slot
holds the shared prompt prefix after its first request), then the first `--sequential` of the
run's requests go one after another, then every slot serves a short request again (so none holds a
whole prompt of what follows), then all `--requests` run with `--in-flight` of them in flight at any
time, a new one starting as soon as one ends, as `vdata gen`'s engine keeps its `concurrency` requests
in flight. Same prompts and seeds in both modes: the same replies, to batching's rounding.
(One wave of `--in-flight` requests started together, `--requests` equal to `--in-flight`, measures
less: replies end at different lengths, and the batch shrinks to its longest few for the last steps.)
transformers (SmolLM2-135M-Instruct, float32): one `generate` call per prompt vs one call for all.
Tokens = generated tokens (prompt tokens are work too, but not output).

The machine is shared, so besides wall-clock tokens/s the bench prints tokens per CPU-second of this
process (all its threads): the ratio of those does not move when other processes take CPU away.
It also measures the machine's float32 GEMM rate with the same thread count (numpy) and prints the
fraction of it that generation reaches, with FLOPs per token = 2 x parameters (read from the GGUF;
the tied embedding counts once, as the output projection) + attention 4 x layers x width x context.

    python bench/gen_local.py [--in-flight 32] [--requests 256] [--sequential 48]
                              [--max-tokens 160] [--threads 0]
                              [--backend all|xllamacpp|transformers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdata.generate.options import parse_options
from vdata.generate.strategies import get_strategy
from vdata.generate.templates import load_template

TEMPERATURE = 0.7  # what `vdata gen` uses by default


def prompts(n: int) -> list[list[dict[str, str]]]:
    """Real `targeted` gender requests, as `vdata gen` sends them (distinct term triples)."""
    options = parse_options(
        {"categories": ["gender"], "terms": {"gender": ["woman", "man", "aunt", "son", "bride"]}}
    )
    strategy = get_strategy("targeted")(options, load_template("targeted", None))
    strategy.terms = {"gender": options.terms["gender"]}  # type: ignore[index]
    return [strategy.build_request(i).messages for i in range(n)]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Timed:
    tokens: int
    prompt_tokens: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.tokens / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.tokens / self.cpu


def timed(run: Callable[[], list[Any]]) -> Timed:
    c0, t0 = cpu_seconds(), time.perf_counter()
    outs = run()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return Timed(
        sum(o.completion_tokens for o in outs), sum(o.prompt_tokens for o in outs), wall, max(cpu, 1e-9)
    )


async def timed_async(run: Callable[[], Any]) -> Timed:
    c0, t0 = cpu_seconds(), time.perf_counter()
    outs = await run()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return Timed(
        sum(o.completion_tokens for o in outs), sum(o.prompt_tokens for o in outs), wall, max(cpu, 1e-9)
    )


HEADER = (
    f"{'backend':13} {'mode':16} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'CPU-s':>7} {'tok/CPU-s':>9}"
)


def row(name: str, mode: str, t: Timed) -> None:
    print(
        f"{name:13} {mode:16} {t.tokens:>7} {t.wall:>8.1f} {t.rate:>9.1f} {t.cpu:>7.1f} {t.cpu_rate:>9.1f}",
        flush=True,
    )


def ratio_row(a: Timed, b: Timed) -> None:
    print(
        f"{'':13} {'speed-up':16} {'':7} {'':8} {b.rate / a.rate:>8.2f}x {'':7} {b.cpu_rate / a.cpu_rate:>8.2f}x"
    )


def gemm_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> tuple[float, float]:
    """float32 GEMM GFLOP/s (wall, per CPU-second) with `threads` BLAS threads."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(threads):
        a @ b  # warm-up
        reps, c0, t0 = 0, cpu_seconds(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    flops = 2 * n**3 * reps / 1e9
    return flops / wall, flops / cpu


def model_shape(gguf: Path) -> tuple[int, int, int]:
    """(parameters, layers, width) of a GGUF model."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf)
    arch = reader.fields["general.architecture"].contents()
    params = sum(int(t.n_elements) for t in reader.tensors)
    return (
        params,
        int(reader.fields[f"{arch}.block_count"].contents()),
        int(reader.fields[f"{arch}.embedding_length"].contents()),
    )


def bench_transformers(msgs: list[list[dict[str, str]]], n_seq: int, max_tokens: int) -> None:
    from vdata.generate.providers.local import TransformersProvider

    provider = TransformersProvider("smollm2-135m", batch_size=len(msgs))
    provider.generate_batch(msgs[:1], TEMPERATURE, 4, 0)  # warm-up
    single = timed(
        lambda: [provider.generate_batch([m], TEMPERATURE, max_tokens, 0)[0] for m in msgs[:n_seq]]
    )
    batched = timed(lambda: provider.generate_batch(msgs, TEMPERATURE, max_tokens, 0))
    row("transformers", "one at a time", single)
    row("transformers", f"batch of {len(msgs)}", batched)
    ratio_row(single, batched)


def bench_llamacpp(
    msgs: list[list[dict[str, str]]], slots: int, n_seq: int, max_tokens: int, threads: int | None
) -> tuple[Timed, Timed, Any] | None:
    from vdata.generate.providers.local import LlamaCppProvider, xllamacpp_available

    if not xllamacpp_available():
        print("xllamacpp      not installed")
        return None
    n = slots
    provider = LlamaCppProvider("smollm2-135m", parallel=n, threads=threads, max_tokens=max_tokens)
    print(
        f"llama.cpp: {provider.gguf.name}, {provider.parallel} slots x {provider.slot_context} tokens, "
        f"{provider.threads} threads",
        flush=True,
    )

    def call(m: list[dict[str, str]], i: int, tokens: int = max_tokens) -> Any:
        return provider.complete(m, temperature=TEMPERATURE, max_tokens=tokens, seed=i)

    async def go() -> tuple[Timed, Timed]:
        # Every slot serves one request first, as in a running `vdata gen`: the shared prompt prefix
        # (system prompt and example) is then in each slot's cache for both modes.
        others = prompts(len(msgs) + n)[-n:]

        async def fill_slots() -> None:
            await asyncio.gather(*[call(m, i, 1) for i, m in enumerate(others)])

        # The first requests of the in-flight run, same seeds: the same replies (to batching's rounding).
        async def one_at_a_time() -> list[Any]:
            return [await call(m, i) for i, m in enumerate(msgs[:n_seq])]

        async def in_flight() -> list[Any]:
            # The provider holds each call until a slot is free: n in flight, the next one as one ends.
            return list(await asyncio.gather(*[call(m, i) for i, m in enumerate(msgs)]))

        await fill_slots()
        seq = await timed_async(one_at_a_time)
        # Again, so that no slot holds a whole prompt of the in-flight run (only the shared prefix).
        await fill_slots()
        par = await timed_async(in_flight)
        await provider.aclose()
        return seq, par

    seq, par = asyncio.run(go())
    row("xllamacpp", "one at a time", seq)
    row("xllamacpp", f"{n} in flight" if len(msgs) == n else f"{len(msgs)}, {n} in flight", par)
    ratio_row(seq, par)
    return seq, par, provider


def matmul_bound(par: Timed, requests: int, provider: Any, threads: int) -> None:
    params, layers, width = model_shape(provider.gguf)
    # A generated token attends to its prompt and, on average, half of its own completion.
    avg_context = (par.prompt_tokens + par.tokens / 2) / requests
    per_token = 2 * params + 4 * layers * width * avg_context
    gemm_wall, gemm_cpu = gemm_gflops(threads)
    out_wall = par.rate * per_token / 1e9
    out_cpu = par.cpu_rate * per_token / 1e9
    all_cpu = (par.tokens + par.prompt_tokens) / par.cpu * per_token / 1e9
    print(
        f"\nmatmul bound ({threads} threads, numpy float32 1024x1024 GEMM): {gemm_wall:.1f} GFLOP/s wall, "
        f"{gemm_cpu:.1f} GFLOP per CPU-second"
    )
    print(
        f"model: {params / 1e6:.1f}M parameters, {layers} layers x {width}; FLOPs/token = 2 x params + "
        f"4 x layers x width x {avg_context:.0f} (mean context) = {per_token / 1e6:.0f} MFLOP"
    )
    print(
        f"in flight: {out_wall:.1f} GFLOP/s wall = {out_wall / gemm_wall:.0%} of the bound; "
        f"{out_cpu:.1f} GFLOP/CPU-s = {out_cpu / gemm_cpu:.0%} "
        f"({all_cpu / gemm_cpu:.0%} counting prompt tokens as full tokens, an upper estimate)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in-flight", type=int, default=32, help="requests at once (= llama.cpp slots)")
    ap.add_argument(
        "--requests", type=int, default=0, help="requests in the in-flight run (0 = 8 x --in-flight)"
    )
    ap.add_argument("--sequential", type=int, default=48, help="requests for the one-at-a-time figure")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument(
        "--threads", type=int, default=0, help="llama.cpp/torch/BLAS threads (0 = provider default)"
    )
    ap.add_argument("--backend", choices=["all", "xllamacpp", "transformers"], default="all")
    args = ap.parse_args()
    from vdata.generate.providers.local import default_threads

    threads = args.threads or default_threads()
    import torch

    torch.set_num_threads(threads)  # on a busy machine, spinning OpenMP threads starve each other
    requests = args.requests or 8 * args.in_flight
    msgs = prompts(requests)
    print(
        f"{requests} targeted prompts, {args.in_flight} in flight, {args.sequential} one at a time, temperature "
        f"{TEMPERATURE}, max {args.max_tokens} new tokens, {threads} threads; load {os.getloadavg()[0]:.2f}"
    )
    print(HEADER)
    if args.backend in ("all", "xllamacpp"):
        result = bench_llamacpp(msgs, args.in_flight, args.sequential, args.max_tokens, threads)
        if result is not None:
            matmul_bound(result[1], requests, result[2], threads)
    if args.backend in ("all", "transformers"):
        bench_transformers(msgs[: args.in_flight], args.sequential, args.max_tokens)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
