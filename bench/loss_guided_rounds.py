"""Does loss-guided prompting find sentences the target model resists more? Mean bias score per round.

Runs `vdata gen` with the `loss_guided` strategy (local SmolLM2-135M as generator and target by default),
then scores every accepted record with the target model once more (the same batched score the strategy uses:
score(CDA counterfactual) - score(record)) and groups the records by the round that produced them. Round 0
uses the plain targeted-style prompt, so it is the control; later rounds were prompted with the top/bottom-k
examples. Prints mean bias per round with 95% bootstrap CIs, and the difference later - round 0.

    .venv/bin/python bench/loss_guided_rounds.py --work /tmp/lg-bench --count 45 --rounds 3 --k 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VDATA_DATA_DIR", str(ROOT.parent / "shared" / "benchmarks"))

BOOTSTRAP = 2000


def mean_ci(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(BOOTSTRAP))
    return statistics.fmean(values), means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]


def diff_ci(a: list[float], b: list[float], seed: int = 1) -> tuple[float, float, float]:
    rng = random.Random(seed)
    diffs = sorted(
        statistics.fmean(rng.choices(a, k=len(a))) - statistics.fmean(rng.choices(b, k=len(b)))
        for _ in range(BOOTSTRAP)
    )
    return (
        statistics.fmean(a) - statistics.fmean(b),
        diffs[int(0.025 * BOOTSTRAP)],
        diffs[int(0.975 * BOOTSTRAP) - 1],
    )


def round_of(records: list[Any], sidecar: list[dict[str, Any]], rounds: int) -> dict[str, int]:
    """A record scored after round r (sidecar `round` = r + 1) was made in round r; unscored ones in the last."""
    made: dict[str, int] = {}
    for row in sidecar:
        made.setdefault(row["id"], row["round"] - 1)
    return {r.id: made.get(r.id, rounds - 1) for r in records}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/vdata-bench-loss-guided"))
    p.add_argument("--generator", default="smollm2-135m")
    p.add_argument("--target-model", default="smollm2-135m")
    p.add_argument("--count", type=int, default=45)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--per-request", type=int, default=3)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    from vdata.core.cda import load_word_lists
    from vdata.core.io import read_records
    from vdata.generate.engine import generate
    from vdata.generate.options import parse_options
    from vdata.generate.strategies.loss_guided import bias_scores
    from vdata.lm.models import load_model

    options = parse_options(
        {
            "provider": "local",
            "model": args.generator,
            "strategy": "loss_guided",
            "categories": ["gender"],
            "count": args.count,
            "per_request": args.per_request,
            "concurrency": 2,
            "terms": {
                "gender": [
                    "woman",
                    "man",
                    "girl",
                    "boy",
                    "mother",
                    "father",
                    "sister",
                    "brother",
                    "wife",
                    "husband",
                    "daughter",
                    "son",
                    "aunt",
                    "uncle",
                    "lady",
                    "gentleman",
                ]
            },
            "strategy_options": {"target_model": args.target_model, "rounds": args.rounds, "k": args.k},
        }
    )
    out = args.work / "records.jsonl"
    t0 = time.perf_counter()
    summary = generate(options, out)
    gen_seconds = time.perf_counter() - t0
    records = read_records(out)
    side_path = Path(f"{out}.loss_guided.jsonl")
    sidecar = [json.loads(x) for x in side_path.read_text().splitlines()] if side_path.exists() else []
    made_in = round_of(records, sidecar, args.rounds)

    lm = load_model(args.target_model)
    scores = bias_scores(lm, records, load_word_lists())
    per_round: dict[int, list[float]] = {}
    for r in records:
        if r.id in scores:
            per_round.setdefault(made_in[r.id], []).append(scores[r.id])

    lines = ["| round | records scored | mean bias [95% CI] |", "|---|---|---|"]
    for rnd in sorted(per_round):
        m, lo, hi = mean_ci(per_round[rnd])
        lines.append(f"| {rnd} | {len(per_round[rnd])} | {m:.3f} [{lo:.3f}, {hi:.3f}] |")
    later = [v for rnd, vs in per_round.items() if rnd > 0 for v in vs]
    result: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "records": len(records),
        "requests": summary.requests,
        "gen_seconds": gen_seconds,
        "per_round": per_round,
    }
    if 0 in per_round and later:
        d, lo, hi = diff_ci(later, per_round[0])
        lines.append(
            f"\nlater rounds - round 0: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (positive: guidance found harder examples)"
        )
        result["later_minus_round0"] = [d, lo, hi]
    table = "\n".join(lines)
    print(f"{len(records)} records, {summary.requests} requests, {gen_seconds:.0f}s generation\n{table}")
    (args.work / "summary.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
