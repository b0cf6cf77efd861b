"""The experiment behind `vdata debias` (issue 4): SmolLM2-135M, Han et al.'s targeted gender data, LoRA.

For each trained model: StereoSet gender SS (test split), CrowS-Pairs gender, overall StereoSet LMS and
perplexity, before and after, with 95% bootstrap confidence intervals; training wall time and samples/s
next to a batch-size-1 run of the same data (the paper's setting) on the same machine.

    .venv/bin/python bench/debias_han.py --work /tmp/vbd                      # everything
    .venv/bin/python bench/debias_han.py --work /tmp/vbd --runs han --lms-sample 1500

Runs (each a `vdata debias` output dir under --work; finished ones are reused, interrupted ones resume):
  han             Han et al. Targeted_Debiasing/Gender/*S.json (1,500 sentences), LoRA, sentence objective
  han-cda         the same plus two-sided gender CDA
  han-attr        Han et al.'s own objective: loss on the attribute word only
  han-bottleneck  a Pfeiffer bottleneck adapter (reduction factor 16) instead of LoRA, as in the paper
  han-2ep         two epochs
  vdata           records made by `vdata gen` with the embedded model (--vdata-data), sentence objective
  vdata-cda       the same plus two-sided gender CDA

Scoring is `vdata eval`'s (vdata.lm.causal, with prefix sharing), which follows bias-bench (README
section 8) for causal LMs: the first token is scored conditioned on the model's start token alone (SmolLM2:
its BOS `<|im_start|>`), the remaining tokens on the sentence without the start token; the score is the mean
token log-probability. SS/LMS use bias-bench's per-target macro averages.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VDATA_DATA_DIR", str(ROOT.parent / "shared" / "benchmarks"))

# Settings each run adds to the common ones (--epochs, --lr, ...).
VARIANTS: dict[str, dict[str, Any]] = {
    "han": {},
    "han-cda": {"cda": ["gender"]},
    "han-attr": {"objective": "attribute"},
    "han-bottleneck": {"method": "bottleneck"},
    "han-2ep": {"epochs": 2},
    "vdata": {},
    "vdata-cda": {"cda": ["gender"]},
}
HAN_GENDER = [f"han2024-synthetic/Targeted_Debiasing/Gender/Synthetic_Gender_{i}S.json" for i in (1, 2, 3)]
BOOTSTRAP = 1000


def sentence_scores(lm: Any, sentences: list[str], batch_size: int = 64) -> list[float]:
    """bias-bench's causal sentence score (mean token log-prob; the first token conditioned on the model's
    start token alone, the rest on the sentence), from `vdata eval`'s batched scorer so the numbers here
    mean what `vdata eval` reports."""
    from vdata.lm.causal import CausalScorer

    return CausalScorer(lm, batch_size=batch_size).sentence_logprobs(sentences)


def grouped_scores(lm: Any, groups: list[list[str]], batch_size: int = 64) -> list[list[float]]:
    """The same scores for groups sharing a token prefix (StereoSet's three candidates, a CrowS pair),
    computed with `vdata eval`'s prefix sharing: equal to `sentence_scores` to within 1e-5, faster."""
    from vdata.lm.causal import CausalScorer

    return CausalScorer(lm, batch_size=batch_size).grouped_sentence_logprobs(groups)


def stereoset_items(data_dir: Path) -> list[dict[str, Any]]:
    from vdata.core.benchdata import locate

    data = json.loads(locate("stereoset/test.json", data_dir=data_dir).read_text())
    items = []
    for ex in data["data"]["intrasentence"]:
        by_label = {s["gold_label"]: s["sentence"] for s in ex["sentences"]}
        items.append({"target": ex["target"], "bias_type": ex["bias_type"], **by_label})
    return items


def macro_ss_lms(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """bias-bench's aggregation: per target SS_t and LMS_t, then unweighted means over targets."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        t = per[r["target"]]
        t[0] += r["pro"]
        t[1] += r["related"]
        t[2] += 1
    ss = sum(100 * p / n for p, _, n in per.values()) / len(per)
    lms = sum(100 * rel / (2 * n) for _, rel, n in per.values()) / len(per)
    return ss, lms


def bootstrap(rows: list[Any], stat: Any, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    vals = sorted(stat([rows[rng.randrange(len(rows))] for _ in rows]) for _ in range(BOOTSTRAP))
    return vals[int(0.025 * BOOTSTRAP)], vals[int(0.975 * BOOTSTRAP) - 1]


def evaluate(lm: Any, data_dir: Path, lms_sample: int | None, ppl_texts: list[str]) -> dict[str, Any]:
    items = stereoset_items(data_dir)
    gender = [x for x in items if x["bias_type"] == "gender"]
    overall = items
    if lms_sample and lms_sample < len(items):
        # The gender examples (scored anyway) plus a seeded sample of the other domains.
        others = [x for x in items if x["bias_type"] != "gender"]
        overall = gender + random.Random(0).sample(others, lms_sample)
    need = list({id(x): x for x in [*gender, *overall]}.values())
    groups = [[x["stereotype"], x["anti-stereotype"], x["unrelated"]] for x in need]
    scores = {
        s: v
        for g, vs in zip(groups, grouped_scores(lm, groups), strict=True)
        for s, v in zip(g, vs, strict=True)
    }

    def row(x: dict[str, Any]) -> dict[str, Any]:
        st, an, un = scores[x["stereotype"]], scores[x["anti-stereotype"]], scores[x["unrelated"]]
        return {"target": x["target"], "pro": int(st > an), "related": int(st > un) + int(an > un)}

    g_rows, o_rows = [row(x) for x in gender], [row(x) for x in overall]
    ss, _ = macro_ss_lms(g_rows)
    _, lms = macro_ss_lms(o_rows)
    from vdata.core.benchdata import locate

    with locate("crows_pairs/crows_pairs_anonymized.csv", data_dir=data_dir).open(encoding="utf-8") as f:
        pairs = [r for r in csv.DictReader(f) if r["bias_type"] == "gender"]
    scored_pairs = grouped_scores(lm, [[p["sent_more"], p["sent_less"]] for p in pairs])
    crows_hits = [int(m > le) for m, le in scored_pairs]
    ppl_lp = sentence_scores(lm, ppl_texts)
    ntoks = [len(lm.tokenizer.encode(t, add_special_tokens=False)) for t in ppl_texts]
    ppl = math.exp(-sum(lp * n for lp, n in zip(ppl_lp, ntoks, strict=True)) / sum(ntoks))
    return {
        "ss_gender": ss,
        "ss_gender_ci": bootstrap(g_rows, lambda rs: macro_ss_lms(rs)[0]),
        "bias_gender": abs(ss - 50),
        "bias_gender_ci": bootstrap(g_rows, lambda rs: abs(macro_ss_lms(rs)[0] - 50)),
        "lms_overall": lms,
        "lms_overall_ci": bootstrap(o_rows, lambda rs: macro_ss_lms(rs)[1]),
        "lms_examples": len(o_rows),
        "crows_gender": 100 * sum(crows_hits) / len(crows_hits),
        "crows_gender_ci": bootstrap(crows_hits, lambda h: 100 * sum(h) / len(h)),
        "perplexity": ppl,
        "gender_rows": g_rows,
        "crows_hits": crows_hits,
    }


def paired_reduction_ci(before: dict[str, Any], after: dict[str, Any]) -> tuple[float, float]:
    """95% CI of the relative reduction of |SS-50| (gender), resampling StereoSet examples jointly."""
    rng = random.Random(1)
    b_rows, a_rows = before["gender_rows"], after["gender_rows"]
    vals = []
    for _ in range(BOOTSTRAP):
        idx = [rng.randrange(len(b_rows)) for _ in b_rows]
        b = abs(macro_ss_lms([b_rows[i] for i in idx])[0] - 50)
        a = abs(macro_ss_lms([a_rows[i] for i in idx])[0] - 50)
        vals.append(100 * (b - a) / b if b else 0.0)
    vals.sort()
    return vals[int(0.025 * BOOTSTRAP)], vals[int(0.975 * BOOTSTRAP) - 1]


def ppl_corpus(data_dir: Path, n: int = 200) -> list[str]:
    """Natural sentences not used by the SS/LMS scores: StereoSet intersentence contexts."""
    from vdata.core.benchdata import locate

    data = json.loads(locate("stereoset/test.json", data_dir=data_dir).read_text())
    return [ex["context"] for ex in data["data"]["intersentence"][:n]]


def cached_eval(name: str, model_ref: str, args: argparse.Namespace, ppl_texts: list[str]) -> dict[str, Any]:
    from vdata.lm.models import load_model

    path = args.work / f"eval-{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    lm = load_model(model_ref)
    result = evaluate(lm, args.data_dir, args.lms_sample, ppl_texts)
    result["eval_seconds"] = time.perf_counter() - t0
    path.write_text(json.dumps(result))
    print(
        f"[{name}] SS gender {result['ss_gender']:.2f}  LMS {result['lms_overall']:.2f}  "
        f"CrowS {result['crows_gender']:.2f}  ppl {result['perplexity']:.2f}  ({result['eval_seconds']:.0f}s)",
        flush=True,
    )
    return result


def train(name: str, data: list[str], args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    from vdata.debias.settings import DebiasSettings
    from vdata.debias.train import run_debias

    # docs/results.md's rows were trained with `vdata debias`'s defaults of the time, LoRA and the sentence
    # objective; the defaults have changed since (issue 11), so the rows pin them.
    settings: dict[str, Any] = {"method": "lora", "objective": "sentence", "epochs": args.epochs, **extra}
    s = DebiasSettings(
        model="smollm2-135m",
        data=data,
        out=str(args.work / name),
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=args.max_length,
        lora_r=args.lora_r,
        seed=0,
        data_dir=str(args.data_dir),
        **settings,
    )
    t0 = time.perf_counter()
    result = run_debias(s)
    m = result.manifest
    print(
        f"[{name}] trained: {m['counts']['train_examples']} examples, {m['steps']} steps, "
        f"{m['train_seconds']:.0f}s, {m['samples_per_second']:.2f} samples/s, "
        f"val loss {m['losses']['initial_val']:.3f} -> {m['losses']['final_val']:.3f} "
        f"(call {time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    return m


def bs1_throughput(data: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Batch size 1 (the paper's setting), time-boxed to --bs1-steps steps; samples/s from its checkpoint."""
    import torch

    from vdata.debias.loop import StopRequested
    from vdata.debias.settings import DebiasSettings
    from vdata.debias.train import run_debias

    out = args.work / "han-bs1"
    s = DebiasSettings(
        model="smollm2-135m",
        data=data,
        out=str(out),
        epochs=args.epochs,
        batch_size=1,
        lr=args.lr,
        max_length=args.max_length,
        lora_r=args.lora_r,
        seed=0,
        data_dir=str(args.data_dir),
        stop_after_steps=args.bs1_steps,
        save_every=0,
    )
    state_file = out / ".checkpoint" / "state.pt"
    if not state_file.exists():
        with contextlib.suppress(StopRequested):
            run_debias(s)
    prog = torch.load(state_file, weights_only=False)["progress"]
    return {
        "steps": prog["step"],
        "seconds": prog["train_seconds"],
        "samples_per_second": prog["samples_seen"] / prog["train_seconds"],
    }


def fmt_ci(v: float, ci: list[float] | tuple[float, float]) -> str:
    return f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/vdata-bench-debias"))
    p.add_argument("--data-dir", type=Path, default=Path(os.environ["VDATA_DATA_DIR"]))
    p.add_argument("--runs", default="han,han-cda,vdata")
    p.add_argument("--vdata-data", type=Path, default=None, help="Records from `vdata gen` (gender).")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--max-length", type=int, default=40)
    p.add_argument(
        "--lms-sample",
        type=int,
        default=None,
        help="Non-gender StereoSet examples sampled for LMS (default all).",
    )
    p.add_argument(
        "--han-limit", type=int, default=None, help="Han sentences used by the han run (default all)."
    )
    p.add_argument("--cda-limit", type=int, default=750, help="Han sentences before CDA in han-cda.")
    p.add_argument("--bs1-steps", type=int, default=120)
    p.add_argument("--torch-threads", type=int, default=0)
    args = p.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    args.work.mkdir(parents=True, exist_ok=True)
    from vdata.core.benchdata import locate

    han = [str(locate(f, data_dir=args.data_dir)) for f in HAN_GENDER]
    ppl_texts = ppl_corpus(args.data_dir)
    results: dict[str, Any] = {"base": cached_eval("base", "smollm2-135m", args, ppl_texts)}
    manifests: dict[str, Any] = {}
    for run in filter(None, args.runs.split(",")):
        if run.startswith("vdata"):
            if not args.vdata_data or not args.vdata_data.exists():
                print(f"[{run}] skipped: no --vdata-data file", flush=True)
                continue
            data = [str(args.vdata_data)]
        else:
            data = han
        if run not in VARIANTS:
            p.error(f"unknown run {run!r}; known: {', '.join(VARIANTS)}")
        extra = dict(VARIANTS[run])
        if run.startswith("han") and run != "han-cda" and args.han_limit:
            extra["limit"] = args.han_limit
        if run == "han-cda" and args.cda_limit:
            extra["limit"] = args.cda_limit  # CDA doubles the data: same number of training samples as `han`
        manifests[run] = train(run, data, args, **extra)
        results[run] = cached_eval(run, str(args.work / run), args, ppl_texts)
        write_report(results, manifests, None, args)
    bs1 = bs1_throughput(han, args) if "han" in manifests and args.bs1_steps else None
    write_report(results, manifests, bs1, args)


def write_report(
    results: dict[str, Any], manifests: dict[str, Any], bs1: dict[str, float] | None, args: argparse.Namespace
) -> None:

    base = results["base"]
    lines = [
        "| model | SS gender (50 = unbiased) | abs(SS-50) reduction | CrowS gender | LMS overall | perplexity |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        red = ""
        if name != "base":
            pct = 100 * (base["bias_gender"] - r["bias_gender"]) / base["bias_gender"]
            lo, hi = paired_reduction_ci(base, r)
            red = f"{pct:.1f}% [{lo:.1f}, {hi:.1f}]"
        lines.append(
            f"| {name} | {fmt_ci(r['ss_gender'], r['ss_gender_ci'])} | {red} | "
            f"{fmt_ci(r['crows_gender'], r['crows_gender_ci'])} | {fmt_ci(r['lms_overall'], r['lms_overall_ci'])} | "
            f"{r['perplexity']:.2f} |"
        )
    lines.append("")
    lines.append("| run | examples | epochs | steps | train s | samples/s |")
    lines.append("|---|---|---|---|---|---|")
    for name, m in manifests.items():
        lines.append(
            f"| {name} | {m['counts']['train_examples']} | {m['epochs_completed']} | {m['steps']} | "
            f"{m['train_seconds']:.0f} | {m['samples_per_second']:.2f} |"
        )
    if bs1 and "han" in manifests:
        m = manifests["han"]
        ratio = m["samples_per_second"] / bs1["samples_per_second"]
        projected = m["counts"]["train_examples"] * m["epochs_completed"] / bs1["samples_per_second"]
        lines.append(
            f"| han, batch size 1 (first {bs1['steps']} steps timed) | {m['counts']['train_examples']} | "
            f"{m['epochs_completed']} | - | {projected:.0f} (projected) | {bs1['samples_per_second']:.2f} |"
        )
        lines.append("")
        lines.append(f"Batched (size {args.batch_size}) vs batch size 1: {ratio:.2f}x samples/s.")
    table = "\n".join(lines)
    print(table)
    (args.work / "results.md").write_text(table + "\n")
    (args.work / "summary.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "results": {
                    k: {kk: vv for kk, vv in v.items() if kk not in ("gender_rows", "crows_hits")}
                    for k, v in results.items()
                },
                "bs1": bs1,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
