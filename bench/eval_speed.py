"""How fast is vdata's batched scorer, compared with bias-bench's one-sentence-at-a-time loop and with
the machine's matmul throughput for the same model shapes?

All three are measured in one run, on the same model and the same StereoSet test sentences, interleaved
round by round so that load from other processes on a shared machine hits them alike:

  * vdata: `CausalScorer.grouped_sentence_logprobs` (what `vdata eval` runs), over a round's sentences;
  * reference: `reference.causal_score`, bias-bench's loop (batch size 1, two passes per sentence), over
    the first `--ref-share` of that round's sentences (it is slow), reported per sentence;
  * matmul bound: the dense matmuls the model must do for those sentences' real tokens (per layer the
    q/k/v/o projections and the three MLP matrices for every token, the LM head for every scored
    position), timed as plain `torch.matmul`s with the same shapes, batch by batch as vdata groups them.

Prints sentences/s for each, the speed-up over the reference and the fraction of the matmul bound
reached (targets: >= 8x and >= 70%), the same fraction for the matmuls of the tokens vdata actually runs
(shared prefixes counted once: the stricter figure), and the largest per-sentence log-prob difference (must be < 1e-4).

    .venv/bin/python bench/eval_speed.py --sentences 384 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from vdata.core.benchdata import locate
from vdata.evaluate import reference
from vdata.lm.batching import encode_plain, length_buckets
from vdata.lm.causal import CausalScorer
from vdata.lm.models import load_model
from vdata.lm.packing import plan_packed_batches

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def matmul_shapes(config: Any) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """(per-layer weight shapes (in, out), LM head shape) of a Llama-style decoder."""
    d = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    kv = getattr(config, "num_key_value_heads", heads) * head_dim
    ff = config.intermediate_size
    layer = [(d, heads * head_dim), (d, kv), (d, kv), (heads * head_dim, d), (d, ff), (d, ff), (ff, d)]
    return layer * config.num_hidden_layers, (d, config.vocab_size)


def matmul_seconds(token_counts: list[tuple[int, int]], config: Any) -> tuple[float, float]:
    """(seconds, GFLOP) for the matmuls of batches with (tokens, scored positions) each."""
    layers, head = matmul_shapes(config)
    weights = {shape: torch.randn(shape) for shape in {*layers, head}}
    flops = 0.0
    started = time.perf_counter()
    with torch.inference_mode():
        for tokens, scored in token_counts:
            x = {d_in: torch.randn(tokens, d_in) for d_in in {s[0] for s in layers}}
            for shape in layers:
                torch.matmul(x[shape[0]], weights[shape])
                flops += 2.0 * tokens * shape[0] * shape[1]
            torch.matmul(torch.randn(scored, head[0]), weights[head])
            flops += 2.0 * scored * head[0] * head[1]
    return time.perf_counter() - started, flops / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sentences", type=int, default=384, help="sentences per round (3 per example)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--ref-share", type=float, default=0.125, help="share of a round the reference scores"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--data-dir", type=Path, default=SHARED if SHARED.is_dir() else None, help="benchmark data folder"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = load_model(args.model)
    data = json.loads(locate("stereoset/test.json", args.data_dir).read_text())["data"]["intrasentence"]
    per_round = args.sentences // 3
    scorer = CausalScorer(lm, batch_size=args.batch_size)
    start = scorer.start
    scorer.sentence_logprobs(["Warm-up."])  # first-token pass, shortcut check, thread pools

    t_vdata = t_ref = t_mm = t_mm_packed = 0.0
    n_vdata = n_ref = 0
    gflop = 0.0
    worst = 0.0
    for r in range(args.rounds):
        examples = data[r * per_round : (r + 1) * per_round]
        groups = [[s["sentence"] for s in ex["sentences"]] for ex in examples]
        flat = [s for g in groups for s in g]

        t0 = time.perf_counter()
        got = [v for g in scorer.grouped_sentence_logprobs(groups) for v in g]
        t_vdata += time.perf_counter() - t0
        n_vdata += len(flat)

        n_this = max(1, int(len(flat) * args.ref_share))
        t0 = time.perf_counter()
        ref = [reference.causal_score(lm, s, start.id) for s in flat[:n_this]]
        t_ref += time.perf_counter() - t0
        n_ref += n_this
        worst = max(worst, *(abs(a - b) for a, b in zip(got, ref, strict=False)))

        encoded = encode_plain(lm.tokenizer, flat)
        counts = []
        for bucket in length_buckets([len(e) for e in encoded], args.batch_size):
            tokens = sum(len(encoded[i]) for i in bucket)
            counts.append((tokens, tokens - len(bucket)))
        secs, gf = matmul_seconds(counts, lm.model.config)
        t_mm += secs
        gflop += gf
        # The same bound for the tokens vdata actually runs: shared prefixes once, the LM head on the
        # distinct scored rows only (prefix sharing is why vdata can beat the all-tokens bound).
        packed, batches = plan_packed_batches(encoded, [len(g) for g in groups], args.batch_size)
        packed_counts = []
        for batch in batches:
            tokens = sum(len(packed[i].ids) for i in batch)
            rows = sum(len({row for row, _, _ in packed[i].scored}) for i in batch)
            packed_counts.append((tokens, rows))
        t_mm_packed += matmul_seconds(packed_counts, lm.model.config)[0]

    vdata_rate = n_vdata / t_vdata
    ref_rate = n_ref / t_ref
    bound_rate = n_vdata / t_mm
    packed_bound_rate = n_vdata / t_mm_packed
    figures = {
        "model": args.model,
        "torch_threads": torch.get_num_threads(),
        "sentences_vdata": n_vdata,
        "sentences_reference": n_ref,
        "vdata_sentences_per_s": round(vdata_rate, 2),
        "reference_sentences_per_s": round(ref_rate, 2),
        "matmul_bound_sentences_per_s": round(bound_rate, 2),
        "matmul_gflop_per_s": round(gflop / t_mm, 1),
        "speedup_vs_reference": round(vdata_rate / ref_rate, 2),
        "fraction_of_matmul_bound": round(vdata_rate / bound_rate, 3),
        "matmul_bound_packed_sentences_per_s": round(packed_bound_rate, 2),
        "fraction_of_packed_matmul_bound": round(vdata_rate / packed_bound_rate, 3),
        "max_abs_logprob_diff": worst,
    }
    print(f"model {args.model}, {torch.get_num_threads()} torch threads, batch size {args.batch_size}")
    print(f"{'scorer':<28}{'sentences':>10}{'sentences/s':>14}")
    print(f"{'vdata (batched)':<28}{n_vdata:>10}{vdata_rate:>14.1f}")
    print(f"{'bias-bench loop (1 at a time)':<28}{n_ref:>10}{ref_rate:>14.1f}")
    print(
        f"{'matmul bound (same shapes)':<28}{n_vdata:>10}{bound_rate:>14.1f}   ({gflop / t_mm:.1f} GFLOP/s)"
    )
    print(f"{'matmul bound (packed tokens)':<28}{n_vdata:>10}{packed_bound_rate:>14.1f}")
    print(f"speed-up vs one-at-a-time: {vdata_rate / ref_rate:.1f}x (target >= 8x)")
    print(f"fraction of matmul bound: {100 * vdata_rate / bound_rate:.0f}% (target >= 70%)")
    print(
        f"fraction of the bound for the tokens vdata runs (shared prefixes once): "
        f"{100 * vdata_rate / packed_bound_rate:.0f}%"
    )
    print(f"max |log-prob difference| vdata vs reference: {worst:.2e} (must be < 1e-4)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
