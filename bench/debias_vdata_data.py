"""Issue 15's experiment: is the embedded model's gated data worth training on? Four arms, one debias + eval each.

  a  Han et al.'s gender sentences (the first --records of `Synthetic_Gender_{1,2,3}S.json`, 1,500 in all)
  b  --records gender records from `vdata gen` with the embedded model and the verification gate ("verify": true)
  c  --records gender records from the same generator without the gate ("verify": false)
  d  arm a's sentences that pass the same gate (`vdata verify`): fewer; the report says how many

Each arm trains and evaluates exactly as docs/results.md's `han` row (bench/debias_han.py's functions: LoRA r=16,
sentence objective, 1 epoch, batch 16, lr 3e-4, max 40 tokens, seed 0; StereoSet gender SS with the paired bootstrap
CI of the |SS-50| reduction, LMS over all StereoSet examples unless --lms-sample, CrowS-Pairs gender, perplexity).
Generation and gating run through the `vdata` command (subprocess), as a user would.

    python bench/debias_vdata_data.py --work /tmp/vbd/w15 --torch-threads 2            # the full experiment
    python bench/debias_vdata_data.py --work /tmp/vbd/smoke --arms a,c --records 40 --lms-sample 20 --eval-limit 60

Resumable: every step writes its result under WORK/<arm>-<fingerprint of the settings it depends on>/ and is skipped
when that exists (`vdata gen` resumes from its own journal; `vdata debias` from its checkpoint), so a rerun with the
same settings continues and one with other settings starts beside it. The report (WORK/results.md, summary.json) is
rewritten after every arm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from vdata.core.fingerprint import fingerprint
from vdata.core.han import parse_han_row
from vdata.core.io import write_json_atomic, write_records
from vdata.core.records import Record
from vdata.generate.templates import load_template

# The same debias and eval machinery as docs/results.md's rows.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import debias_han as dh

ARMS = {
    "a": "Han et al. (GPT-4)",
    "b": "embedded model, gated",
    "c": "embedded model, ungated",
    "d": "Han et al., gated",
}
# What `vdata gen` is asked for in arms b and c (--gen-options adds to / overrides it).
GEN_OPTIONS: dict[str, Any] = {
    "provider": "local",
    "strategy": "targeted",
    "categories": ["gender"],
    "temperature": 0.7,
    "seed": 0,
    "concurrency": 32,
}
BOOTSTRAP = dh.BOOTSTRAP


def vdata_command() -> list[str]:
    """`vdata` run with this interpreter, so the worktree's code (PYTHONPATH) is what runs."""
    return [sys.executable, "-m", "vdata.cli"]


def run_vdata(args: list[str], log: Path) -> float:
    """Run `vdata ARGS`, appending its output to `log`; returns the wall seconds. Fails loudly."""
    env = {**os.environ, "VDATA_CONTRIBUTE": "never"}
    t0 = time.perf_counter()
    r = subprocess.run([*vdata_command(), *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ vdata {' '.join(args)}\n{r.stdout}{r.stderr}[exit {r.returncode}, {seconds:.1f} s]\n")
    if r.returncode != 0:
        raise SystemExit(f"vdata {args[0]} failed (exit {r.returncode}); see {log}:\n{r.stderr[-2000:]}")
    return seconds


def han_records(data_dir: Path, limit: int) -> list[Record]:
    from vdata.core.benchdata import locate

    out: list[Record] = []
    for name in dh.HAN_GENDER:
        for row in json.loads(locate(name, data_dir=data_dir).read_text(encoding="utf-8")):
            han = parse_han_row(row)
            if han is not None:
                out.append(
                    Record(
                        text=han.text,
                        target=han.target,
                        attribute=han.attribute,
                        category="gender",
                        strategy="han2024",
                        provider="han2024",
                        model="gpt-4",
                    )
                )
    return out[:limit]


def rejected_reasons(path: Path) -> dict[str, int]:
    """Failed checks by name in a `--rejected` file (each record carries its `checks`)."""
    reasons: Counter[str] = Counter()
    if not path.exists():
        return {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        checks = json.loads(line).get("checks") or []
        failed = [c.get("name", "?") for c in checks if not c.get("pass", True)]
        reasons.update(failed or ["rejected"])
    return dict(reasons)


def make_data(arm: str, arm_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The arm's training records (data.jsonl) and how they were made (data.json); reused when present."""
    meta_path, data = arm_dir / "data.json", arm_dir / "data.jsonl"
    if meta_path.exists():
        return json.loads(meta_path.read_text(encoding="utf-8"))
    arm_dir.mkdir(parents=True, exist_ok=True)
    log = arm_dir / "vdata.log"
    meta: dict[str, Any] = {"arm": arm}
    if arm in ("a", "d"):
        han = han_records(args.data_dir, args.records)
        source = arm_dir / "han.jsonl"
        write_records(han, source if arm == "d" else data)
        meta["candidates"] = len(han)
        if arm == "d":
            rejected = arm_dir / "rejected.jsonl"
            meta["seconds"] = run_vdata(["verify", str(source), str(data), "--rejected", str(rejected)], log)
            meta["drops"] = rejected_reasons(rejected)
    else:
        options = {**GEN_OPTIONS, "count": args.records, "verify": arm == "b", **args.gen_options}
        opts = arm_dir / "options.json"
        opts.write_text(json.dumps(options, indent=2), encoding="utf-8")
        # `vdata gen` resumes from its journal; the wall time of interrupted attempts is kept beside it.
        spent_path = arm_dir / "gen-seconds.json"
        spent = json.loads(spent_path.read_text()) if spent_path.exists() else 0.0
        summary_path = arm_dir / "gen-summary.json"
        try:
            spent += run_vdata(["gen", str(data), str(opts), "--summary", str(summary_path)], log)
        finally:
            spent_path.write_text(json.dumps(spent))
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        meta.update(
            seconds=spent,
            options=options,
            records=summary["records"],
            drops=summary["drops"],
            requests=summary["requests"],
            tokens=summary["prompt_tokens"] + summary["completion_tokens"],
        )
        meta["candidates"] = summary["records"] + sum(summary["drops"].values())
    meta["records"] = sum(1 for line in data.read_text(encoding="utf-8").splitlines() if line.strip())
    write_json_atomic(meta_path, meta)
    return meta


def settings_key(args: argparse.Namespace, arm: str | None) -> str:
    """Fingerprint of everything a step's result depends on (None: the base model's evaluation)."""
    evaluation = {"lms_sample": args.lms_sample, "eval_limit": args.eval_limit}
    if arm is None:
        return fingerprint(evaluation, 10)
    train = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "lora_r", "max_length")}
    gen = {**GEN_OPTIONS, **args.gen_options} if arm in ("b", "c") else None
    if gen is not None:  # a reworded prompt template is other data: a new step
        gen["template"] = load_template(str(gen["strategy"]), gen.get("prompts")).tag
    return fingerprint({"arm": arm, "records": args.records, "gen": gen, "train": train, **evaluation}, 10)


def step_args(args: argparse.Namespace, work: Path) -> argparse.Namespace:
    """debias_han's functions write under `args.work`: point it at the step's own directory."""
    return argparse.Namespace(**{**vars(args), "work": work})


def paired_ci(
    base: dict[str, Any], x: dict[str, Any], y: dict[str, Any] | None = None
) -> tuple[float, float]:
    """95% paired bootstrap CI of x's relative |SS-50| reduction (or x's minus y's), resampling StereoSet
    gender examples jointly for all models."""
    rng = random.Random(1)
    rows = [base["gender_rows"], x["gender_rows"], *([y["gender_rows"]] if y else [])]
    vals = []
    for _ in range(BOOTSTRAP):
        idx = [rng.randrange(len(rows[0])) for _ in rows[0]]
        b, *others = (abs(dh.macro_ss_lms([r[i] for i in idx])[0] - 50) for r in rows)
        reds = [100 * (b - o) / b if b else 0.0 for o in others]
        vals.append(reds[0] - reds[1] if y else reds[0])
    vals.sort()
    return vals[int(0.025 * BOOTSTRAP)], vals[int(0.975 * BOOTSTRAP) - 1]


def reduction(base: dict[str, Any], r: dict[str, Any]) -> float:
    return 100 * (base["bias_gender"] - r["bias_gender"]) / base["bias_gender"]


def limit_eval(n: int) -> None:
    """Smoke tests only: score the first `n` StereoSet examples of each bias type instead of all."""
    full = dh.stereoset_items

    def first_n(data_dir: Path) -> list[dict[str, Any]]:
        seen: Counter[str] = Counter()
        out = []
        for x in full(data_dir):
            seen[x["bias_type"]] += 1
            if seen[x["bias_type"]] <= n:
                out.append(x)
        return out

    dh.stereoset_items = first_n


def report(base: dict[str, Any], arms: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| arm | records | gen/gate wall s | candidates per kept | drop reasons | SS gender before -> after | "
        "abs(SS-50) reduction [paired 95% CI] | LMS change | CrowS gender | perplexity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, x in arms.items():
        meta, r = x["data"], x["eval"]
        lo, hi = paired_ci(base, r)
        kept = max(1, meta["records"])
        drops = ", ".join(f"{k} {v}" for k, v in sorted(meta.get("drops", {}).items(), key=lambda kv: -kv[1]))
        seconds = f"{meta['seconds']:.0f}" if "seconds" in meta else "-"
        lines.append(
            f"| {arm}: {ARMS[arm]} | {meta['records']} | {seconds} | {meta['candidates'] / kept:.2f} | "
            f"{drops or '-'} | {base['ss_gender']:.2f} -> {r['ss_gender']:.2f} | "
            f"{reduction(base, r):.1f}% [{lo:.1f}, {hi:.1f}] | {r['lms_overall'] - base['lms_overall']:+.2f} | "
            f"{base['crows_gender']:.2f} -> {r['crows_gender']:.2f} | "
            f"{base['perplexity']:.0f} -> {r['perplexity']:.0f} |"
        )
    lines += ["", *target_lines(base, arms)]
    return "\n".join(lines)


def target_lines(base: dict[str, Any], arms: dict[str, dict[str, Any]]) -> list[str]:
    """Issue 15's target, checked on what was measured (arms missing from this run are said so)."""
    if "b" not in arms:
        return ["Target: not checked (arm b not run)."]
    b = arms["b"]["eval"]
    red_b, (lo_b, _) = reduction(base, b), paired_ci(base, b)
    lms_drop = base["lms_overall"] - b["lms_overall"]
    out = [
        f"- b's paired CI lower end above 0: {lo_b:.2f} -> {'met' if lo_b > 0 else 'missed'}",
        f"- b's LMS drop at most 1 point: drop {lms_drop:.2f} (negative: LMS rose) -> "
        f"{'met' if lms_drop <= 1 else 'missed'}",
    ]
    if "a" in arms:
        red_a = reduction(base, arms["a"]["eval"])
        ok = red_b >= red_a / 2
        out.insert(
            0,
            f"- b >= half of a's reduction: {red_b:.1f}% vs {red_a / 2:.1f}% -> {'met' if ok else 'missed'}",
        )
    if "c" in arms:
        c = arms["c"]["eval"]
        lo, hi = paired_ci(base, b, c)
        verdict = "met" if lo > 0 else "missed"
        out.append(
            f"- b clearly beats c: reduction {red_b:.1f}% vs {reduction(base, c):.1f}%, "
            f"difference CI [{lo:.1f}, {hi:.1f}] above 0 -> {verdict}"
        )
    return ["Target:", *out]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/vdata-bench-15"))
    p.add_argument("--data-dir", type=Path, default=Path(os.environ["VDATA_DATA_DIR"]))
    p.add_argument("--arms", default="a,b,c,d", help="Any of a,b,c,d (see above).")
    p.add_argument(
        "--records", type=int, default=1500, help="Records generated (b, c) / Han sentences (a, d)."
    )
    p.add_argument(
        "--gen-options", type=json.loads, default={}, help="JSON added to the gen options of b and c."
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--max-length", type=int, default=40)
    p.add_argument(
        "--lms-sample", type=int, default=None, help="Non-gender StereoSet examples for LMS (default all)."
    )
    p.add_argument(
        "--eval-limit", type=int, default=None, help="Smoke tests: StereoSet examples per bias type."
    )
    p.add_argument("--torch-threads", type=int, default=0)
    args = p.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        p.error(f"unknown arm(s) {', '.join(unknown) or '(none)'}; choose from a,b,c,d")
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.eval_limit:
        limit_eval(args.eval_limit)
    args.work.mkdir(parents=True, exist_ok=True)
    ppl_texts = dh.ppl_corpus(args.data_dir)
    base_dir = args.work / f"base-{settings_key(args, None)}"
    base_dir.mkdir(exist_ok=True)
    base = dh.cached_eval("base", "smollm2-135m", step_args(args, base_dir), ppl_texts)
    done: dict[str, dict[str, Any]] = {}
    for arm in arms:
        arm_dir = args.work / f"{arm}-{settings_key(args, arm)}"
        data = make_data(arm, arm_dir, args)
        print(f"[{arm}] {data['records']} records ({data['candidates']} candidates)", flush=True)
        if data["records"] == 0:
            raise SystemExit(f"[{arm}] no records to train on; see {arm_dir / 'vdata.log'}")
        sub = step_args(args, arm_dir)
        manifest = dh.train("model", [str(arm_dir / "data.jsonl")], sub)
        done[arm] = {
            "data": data,
            "train": manifest,
            "eval": dh.cached_eval("after", str(arm_dir / "model"), sub, ppl_texts),
        }
        table = report(base, done, args)
        (args.work / "results.md").write_text(table + "\n", encoding="utf-8")
        write_json_atomic(
            args.work / "summary.json",
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "base": {k: v for k, v in base.items() if k not in ("gender_rows", "crows_hits")},
                "arms": {
                    a: {
                        "dir": str(args.work / f"{a}-{settings_key(args, a)}"),
                        "data": x["data"],
                        "train_seconds": x["train"]["train_seconds"],
                        "eval": {
                            k: v for k, v in x["eval"].items() if k not in ("gender_rows", "crows_hits")
                        },
                        "reduction": reduction(base, x["eval"]),
                        "reduction_ci": paired_ci(base, x["eval"]),
                    }
                    for a, x in done.items()
                },
            },
        )
    print(table)


if __name__ == "__main__":
    main()
