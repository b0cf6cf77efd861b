"""Local generation speed: tokens/s batched vs one sequence at a time, same prompts, same run.

transformers (SmolLM2-135M-Instruct, float32, CPU): one `generate` call for all prompts (left padding)
vs one call per prompt. xllamacpp (the shipped GGUF), when installed: all requests in flight at once
(continuous batching over parallel slots) vs one after another. Tokens = generated tokens up to EOS.

    python bench/gen_local.py [--prompts 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from vdata.generate.options import parse_options
from vdata.generate.strategies import get_strategy
from vdata.generate.templates import load_template

THREADS: int | None = None


def prompts(n: int) -> list[list[dict[str, str]]]:
    """Real `targeted` gender requests, as `vdata gen` sends them."""
    options = parse_options(
        {"categories": ["gender"], "terms": {"gender": ["woman", "man", "aunt", "son", "bride"]}}
    )
    strategy = get_strategy("targeted")(options, load_template("targeted", None))
    strategy.terms = {"gender": options.terms["gender"]}  # type: ignore[index]
    return [strategy.build_request(i).messages for i in range(n)]


def row(name: str, mode: str, tokens: int, seconds: float) -> float:
    rate = tokens / seconds
    print(f"{name:13} {mode:16} {tokens:>7} {seconds:>8.1f} {rate:>9.1f}", flush=True)
    return rate


def bench_transformers(msgs: list[list[dict[str, str]]], max_tokens: int) -> None:
    from vdata.generate.providers.local import TransformersProvider

    provider = TransformersProvider("smollm2-135m", batch_size=len(msgs))
    provider.generate_batch(msgs[:1], 0.0, 4, 0)  # warm-up
    t0 = time.perf_counter()
    single = [provider.generate_batch([m], 0.0, max_tokens, 0)[0] for m in msgs]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = provider.generate_batch(msgs, 0.0, max_tokens, 0)
    t_batch = time.perf_counter() - t0
    a = row("transformers", "one at a time", sum(c.completion_tokens for c in single), t_single)
    b = row("transformers", f"batch of {len(msgs)}", sum(c.completion_tokens for c in batched), t_batch)
    print(f"{'':13} {'speed-up':16} {b / a:>26.2f}x")


def bench_llamacpp(msgs: list[list[dict[str, str]]], max_tokens: int) -> float | None:
    from vdata.generate.providers.local import LlamaCppProvider, xllamacpp_available

    if not xllamacpp_available():
        print("xllamacpp      not installed")
        return None
    provider = LlamaCppProvider("smollm2-135m", parallel=len(msgs), threads=THREADS)

    async def go() -> tuple[int, float, int, float]:
        await provider.complete(msgs[0], temperature=0.0, max_tokens=4, seed=0)  # warm-up
        t0 = time.perf_counter()
        seq = [await provider.complete(m, temperature=0.0, max_tokens=max_tokens, seed=0) for m in msgs]
        t_seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        par = await asyncio.gather(
            *[provider.complete(m, temperature=0.0, max_tokens=max_tokens, seed=0) for m in msgs]
        )
        t_par = time.perf_counter() - t0
        return sum(c.completion_tokens for c in seq), t_seq, sum(c.completion_tokens for c in par), t_par

    n_seq, t_seq, n_par, t_par = asyncio.run(go())
    a = row("xllamacpp", "one at a time", n_seq, t_seq)
    b = row("xllamacpp", f"{len(msgs)} in parallel", n_par, t_par)
    print(f"{'':13} {'speed-up':16} {b / a:>26.2f}x")
    return b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch/llama.cpp threads (0 = all cores)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # on a busy machine, spinning OpenMP threads starve each other
    global THREADS
    THREADS = args.threads or None
    msgs = prompts(args.prompts)
    print(f"{args.prompts} targeted prompts, greedy, max {args.max_tokens} new tokens")
    print(f"{'backend':13} {'mode':16} {'tokens':>7} {'seconds':>8} {'tokens/s':>9}")
    bench_transformers(msgs, args.max_tokens)
    bench_llamacpp(msgs, args.max_tokens)


if __name__ == "__main__":
    main()
