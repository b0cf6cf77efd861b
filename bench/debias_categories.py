"""Debiasing per category (issue 11): does a setting move StereoSet AND CrowS-Pairs toward 50?

One resumable command. For each category (gender, race, religion) it trains SmolLM2-135M on Han et al.'s
targeted data of that category (the three `*S.json` files, 1,500 sentences) with every setting of
`SETTINGS` (the recommended one of docs/results.md first), evaluates each model on the category's
StereoSet examples (dev AND test split) and CrowS-Pairs pairs, and prints two tables:

  * selection: StereoSet DEV split + a fixed seeded half of the category's CrowS-Pairs (settings are chosen here);
  * report:    StereoSet TEST split + the other half of CrowS-Pairs (the figures to quote; never used to choose).

Every trained model is a `vdata debias` output dir named by its setting and the fingerprint of its settings
(`WORK/<category>-<setting>-<fingerprint>`): a finished run is reused, an interrupted one resumes. Each
evaluation is cached beside it (`eval.json`, per-example scores), and the tables (`WORK/results.md`,
`WORK/summary.json`) are rewritten after every run, so stopping at any point keeps what is done.

    nice -n 10 .venv/bin/python bench/debias_categories.py --work /tmp/vdc --categories race,religion,gender \
        --torch-threads 1      # on a shared machine: 2 threads fighting for the cores waste most of their time
    .venv/bin/python bench/debias_categories.py --work /tmp/vdc --report      # the tables of what is done

Intervals: 95% bootstrap over examples (1,000 resamples). The abs(SS-50) reduction and the CrowS-Pairs change
have PAIRED intervals (the same resampled examples before and after). Target (issue 11): abs(SS-50) cut >= 20%
with the paired CI's lower end > 0, LMS drop <= 1 point, CrowS-Pairs not further from 50 than before
beyond its paired interval.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VDATA_DATA_DIR", str(ROOT.parent / "shared" / "benchmarks"))

CATEGORIES = {  # category -> (Han folder, file stem, StereoSet domain, CrowS-Pairs bias type)
    "gender": ("Gender", "Gender", "gender", "gender"),
    "race": ("Racial", "Race", "race", "race-color"),
    "religion": ("Religion", "Religion", "religion", "religion"),
}
# The setting docs/results.md recommended (issue 11's table): bottleneck adapter, reduction 16, lr 3e-4,
# one epoch, batch 16, max length 40, seed 0, sentence objective.
COMMON: dict[str, Any] = {
    "method": "bottleneck",
    "reduction_factor": 16,
    "lr": 3e-4,
    "epochs": 1,
    "batch_size": 16,
    "max_length": 40,
    "seed": 0,
}
# What each setting has unless it says otherwise: the switches that `vdata debias` now turns on by default
# stay off here, so that every row is the recommended setting plus exactly its own change. (Not part of
# a run's folder name: they were the defaults when the grid began.)
UNLESS_SET: dict[str, Any] = {"objective": "sentence", "balance_groups": 0, "group_kl": 0.0}
# Setting name -> what it changes; "{category}" is replaced by the category name. Order = run order.
SETTINGS: dict[str, dict[str, Any]] = {
    "recommended": {},
    "balanced": {"balance_groups": 1},
    "anchor-kl": {"group_kl": 1.0},
    "balanced+kl": {"balance_groups": 1, "group_kl": 1.0},
    "balanced-ref+kl": {"balance_groups": 1, "group_kl": 1.0, "balance_terms": "{reference}"},
    "attribute": {"objective": "attribute"},
    "attribute+balanced+kl": {"objective": "attribute", "balance_groups": 1, "group_kl": 1.0},
    "cda": {"cda": ["{category}"]},
    "mask": {"mitigation": ["mask"]},
    "lr1e-4": {"lr": 1e-4},
    "lora": {"method": "lora", "lora_r": 16},
}
# `balance_terms` of "balanced-ref": the group the benchmarks compare the data's groups with, which the data
# itself hardly names (Han et al.'s race data names 151 groups, "white" 5 times; CrowS-Pairs race names
# "white" in 243 of 516 less-stereotyping sentences; religion: "Christian(s)" in about half of its 105). Gender's targets
# are all in the CDA word lists, whose swap already names the counterpart: the setting is balanced+kl there.
REFERENCE_GROUPS: dict[str, list[str]] = {
    "gender": [],
    "race": ["white", "Caucasian"],
    "religion": ["Christian", "Christianity"],
}
SEED = 0
RESAMPLES = 1000
TARGET_REDUCTION = 20.0
LMS_DROP_LIMIT = 1.0
Metrics = dict[str, dict[str, dict[str, dict[str, Any]]]]  # side -> category -> setting -> figures


def han_files(category: str, data_dir: Path) -> list[str]:
    from vdata.core.benchdata import locate

    folder, stem, _, _ = CATEGORIES[category]
    rel = [f"han2024-synthetic/Targeted_Debiasing/{folder}/Synthetic_{stem}_{i}S.json" for i in (1, 2, 3)]
    return [str(locate(r, data_dir=data_dir)) for r in rel]


def setting_options(category: str, name: str) -> dict[str, Any]:
    def fill(v: Any) -> Any:
        if v == "{reference}":
            return REFERENCE_GROUPS[category]
        if isinstance(v, str):
            return v.replace("{category}", category)
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    return {**COMMON, **{k: fill(v) for k, v in SETTINGS[name].items()}}


def run_dir(work: Path, category: str, name: str, data: list[str], data_dir: Path) -> Path:
    from vdata.core.fingerprint import fingerprint

    fp = fingerprint({"options": setting_options(category, name), "data": [Path(d).name for d in data]})
    return work / f"{category}-{name.replace('+', '_')}-{fp[:10]}"


# ---- evaluation: per-example scores, cached ----------------------------------------------------------


def crows_split(n: int) -> tuple[list[int], list[int]]:
    """A fixed seeded half of the pairs for selection, the other half for the report."""
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    return sorted(order[: n // 2]), sorted(order[n // 2 :])


def evaluate(model_ref: str, category: str, data_dir: Path) -> dict[str, Any]:
    """The category's StereoSet examples (dev and test) and CrowS-Pairs pairs, scored as `vdata eval` does."""
    from vdata.core.benchdata import locate
    from vdata.evaluate import stereoset
    from vdata.evaluate.pairs import load_crows_pairs_csv
    from vdata.lm.causal import CausalScorer
    from vdata.lm.models import load_model

    _, _, domain, crows_type = CATEGORIES[category]
    lm = load_model(model_ref)
    scorer = CausalScorer(lm, batch_size=64)
    out: dict[str, Any] = {"model": model_ref, "category": category}
    for split in ("dev", "test"):
        examples = stereoset.load_examples(locate(f"stereoset/{split}.json", data_dir=data_dir), [domain])
        logps = scorer.grouped_sentence_logprobs([[t for _, t in ex.ordered()] for ex in examples])
        out[f"stereoset_{split}"] = [
            {"target": ex.target, "lp": lp} for ex, lp in zip(examples, logps, strict=True)
        ]
    pairs = [
        p
        for p in load_crows_pairs_csv(locate("crows_pairs/crows_pairs_anonymized.csv", data_dir))
        if p.group == crows_type
    ]
    sentences = [s for p in pairs for s in (p.more, p.less)]
    tokens = scorer.token_logprobs(sentences)
    offsets = [
        [
            list(o)
            for o in lm.tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ]
        for s in sentences
    ]
    out["crows"] = [
        {
            "more": p.more,
            "less": p.less,
            "more_tok": tokens[2 * i],
            "less_tok": tokens[2 * i + 1],
            "more_off": offsets[2 * i],
            "less_off": offsets[2 * i + 1],
        }
        for i, p in enumerate(pairs)
    ]
    return out


def cached_eval(path: Path, model_ref: str, category: str, data_dir: Path) -> dict[str, Any]:
    from vdata.core.io import write_json_atomic

    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    result = evaluate(model_ref, category, data_dir)
    result["eval_seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(path, result)
    return result


# ---- metrics ----------------------------------------------------------------------------------------


def stereoset_arrays(rows: list[dict[str, Any]]) -> tuple[Any, Any, Any, int]:
    """(pro, related/2, target index, n targets) per example, bias-bench's strict comparisons."""
    import numpy as np

    targets = sorted({r["target"] for r in rows})
    index = {t: i for i, t in enumerate(targets)}
    pro = np.array([float(r["lp"][0] > r["lp"][1]) for r in rows])
    related = np.array([((r["lp"][0] > r["lp"][2]) + (r["lp"][1] > r["lp"][2])) / 2 for r in rows])
    groups = np.array([index[r["target"]] for r in rows])
    return pro, related, groups, len(targets)


def crows_hits(ev: dict[str, Any], which: list[int]) -> Any:
    import numpy as np

    rows = [ev["crows"][i] for i in which]
    mean = [(sum(r["more_tok"]) / len(r["more_tok"]), sum(r["less_tok"]) / len(r["less_tok"])) for r in rows]
    return np.array([float(m > le) for m, le in mean])


def side_metrics(base: dict[str, Any], ev: dict[str, Any], split: str, half: list[int]) -> dict[str, Any]:
    """SS, LMS, CrowS of `ev` on one side (StereoSet split + CrowS half), with paired changes vs `base`."""
    from vdata.evaluate.stats import bootstrap_macro, paired_distance_change

    b_pro, b_rel, groups, n_groups = stereoset_arrays(base[f"stereoset_{split}"])
    a_pro, a_rel, _, _ = stereoset_arrays(ev[f"stereoset_{split}"])
    ss = stats_macro(a_pro, groups, n_groups)
    lms = stats_macro(a_rel, groups, n_groups)
    b_hits, a_hits = crows_hits(base, half), crows_hits(ev, half)
    zeros = [0] * len(a_hits)
    ss_change = paired_distance_change(b_pro, a_pro, groups, n_groups, RESAMPLES, SEED)
    crows_change = paired_distance_change(b_hits, a_hits, zeros, 1, RESAMPLES, SEED)
    return {
        "ss": ss,
        "ss_ci": bootstrap_macro(a_pro, groups, n_groups, RESAMPLES, SEED),
        "lms": lms,
        "lms_ci": bootstrap_macro(a_rel, groups, n_groups, RESAMPLES, SEED),
        "crows": 100 * float(a_hits.mean()),
        "crows_ci": bootstrap_macro(a_hits, zeros, 1, RESAMPLES, SEED),
        "ss_reduction": ss_change["reduction_pct"],
        "ss_reduction_ci": ss_change["reduction_pct_ci"],
        "ss_distance_change_ci": ss_change["change_ci"],
        "crows_distance_change": crows_change["change"],
        "crows_distance_change_ci": crows_change["change_ci"],
        "base_lms": stats_macro(b_rel, groups, n_groups),
        "base_ss": stats_macro(b_pro, groups, n_groups),
        "base_crows": 100 * float(b_hits.mean()),
        "n_stereoset": len(a_pro),
        "n_crows": len(a_hits),
    }


def stats_macro(values: Any, groups: Any, n_groups: int) -> float:
    import numpy as np

    totals = np.bincount(groups, minlength=n_groups)
    sums = np.bincount(groups, weights=values, minlength=n_groups)
    return float(100 * np.mean(sums[totals > 0] / totals[totals > 0]))


def verdict(m: dict[str, Any]) -> str:
    """The product's verdict (`vdata eval compare`) from the two benchmarks' paired intervals."""
    from vdata.evaluate.report import bias_direction

    moves = [
        bias_direction(m["base_ss"], m["ss"], m["ss_ci"], m["ss_distance_change_ci"]),
        bias_direction(m["base_crows"], m["crows"], m["crows_ci"], m["crows_distance_change_ci"]),
    ]
    better, worse = "toward 50" in moves, "away from 50" in moves
    return "trade-off" if better and worse else "debiases" if better else "worse" if worse else "no effect"


def meets_target(m: dict[str, Any]) -> tuple[bool, str]:
    """Issue 11's target on one side; the reason when missed."""
    why = []
    if not (m["ss_reduction"] >= TARGET_REDUCTION and m["ss_reduction_ci"][0] > 0):
        why.append("SS cut")
    if m["base_lms"] - m["lms"] > LMS_DROP_LIMIT:
        why.append("LMS")
    if m["crows_distance_change_ci"][0] > 0:
        why.append("CrowS worse")
    return (not why, ", ".join(why) or "met")


# ---- the grid ---------------------------------------------------------------------------------------


def train(category: str, name: str, out: Path, data: list[str], data_dir: Path) -> dict[str, Any]:
    from vdata.debias.settings import DebiasSettings
    from vdata.debias.train import run_debias

    s = DebiasSettings(
        model="smollm2-135m",
        data=data,
        out=str(out),
        data_dir=str(data_dir),
        **{**UNLESS_SET, **setting_options(category, name)},
    )
    return run_debias(s).manifest


@contextlib.contextmanager
def claimed(target: Path) -> Iterator[bool]:
    """Whether this process may work on `target`: a `<target>.lock` file held while it does, so that two
    invocations on one work dir share the grid (each skips what the other is doing). A lock left by a
    killed process is removed by hand (`rm WORK/*.lock`) before resuming."""
    lock = target.with_name(target.name + ".lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        yield False
        return
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield True
    finally:
        lock.unlink(missing_ok=True)


def run_grid(args: argparse.Namespace) -> None:
    for category in args.categories:
        base_path = args.work / f"base-{category}.json"
        with claimed(base_path) as mine:
            if mine and not base_path.exists():
                print(f"[{category}] evaluating the base model", flush=True)
                cached_eval(base_path, "smollm2-135m", category, args.data_dir)
        write_report(args)
        data = han_files(category, args.data_dir)
        for name in args.settings:
            if setting_options(category, name).get("balance_terms") == []:
                continue  # no reference group named: the same run as without it
            out = run_dir(args.work, category, name, data, args.data_dir)
            if (out / "eval.json").exists():
                continue
            t0 = time.perf_counter()
            with claimed(out) as mine:
                if not mine:
                    print(f"[{category} {name}] another process is on it; skipped", flush=True)
                    continue
                print(f"[{category} {name}] training into {out.name}", flush=True)
                manifest = train(category, name, out, data, args.data_dir)
                print(f"[{category} {name}] evaluating", flush=True)
                cached_eval(out / "eval.json", str(out), category, args.data_dir)
            print(
                f"[{category} {name}] trained {manifest['train_seconds']:.0f}s, "
                f"run + eval {time.perf_counter() - t0:.0f}s ({out.name})",
                flush=True,
            )
            write_report(args)


# ---- report -----------------------------------------------------------------------------------------


def done_runs(work: Path) -> dict[str, dict[str, tuple[Path, dict[str, Any]]]]:
    """category -> setting -> (run dir, its eval) for every finished evaluation under `work`."""
    found: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {}
    for path in sorted(work.glob("*/eval.json")):
        manifest = json.loads((path.parent / "manifest.json").read_text())
        category, rest = path.parent.name.split("-", 1)
        name = rest.rsplit("-", 1)[0].replace("_", "+")
        found.setdefault(category, {})[name] = (
            path.parent,
            json.loads(path.read_text()) | {"manifest": manifest},
        )
    return found


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def all_metrics(runs: dict[str, dict[str, Any]], bases: dict[str, dict[str, Any]]) -> Metrics:
    """side -> category -> setting -> side_metrics: selection = StereoSet dev + CrowS half A, report = test + B."""
    out: Metrics = {}
    for side, split, which in (("selection", "dev", 0), ("report", "test", 1)):
        out[side] = {
            c: {
                n: side_metrics(bases[c], ev, split, crows_split(len(bases[c]["crows"]))[which])
                for n, (_, ev) in r.items()
            }
            for c, r in runs.items()
        }
    return out


def table(metrics: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "| category | setting | SS before -> after | abs(SS-50) cut [paired CI] | LMS before -> after | "
        "CrowS before -> after [CI after] | CrowS distance to 50, change [paired CI] | verdict | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for category, by_setting in metrics.items():
        for name in [s for s in SETTINGS if s in by_setting] + [s for s in by_setting if s not in SETTINGS]:
            m = by_setting[name]
            ok, why = meets_target(m)
            lines.append(
                f"| {category} | {name} | {m['base_ss']:.2f} -> {m['ss']:.2f} | {m['ss_reduction']:.1f}% "
                f"{_ci(m['ss_reduction_ci'])} | {m['base_lms']:.2f} -> {m['lms']:.2f} | {m['base_crows']:.2f} -> "
                f"{m['crows']:.2f} {_ci(m['crows_ci'])} | {m['crows_distance_change']:+.2f} "
                f"{_ci(m['crows_distance_change_ci'])} | {verdict(m)} | {'**met**' if ok else why} |"
            )
    return lines


def _refusal(m: dict[str, Any]) -> list[str]:
    """Why one category's selection-side figures rule a setting out (empty: they do not)."""
    why = ["CrowS worse"] if m["crows_distance_change_ci"][0] > 0 else []
    return why + (["LMS"] if m["base_lms"] - m["lms"] > LMS_DROP_LIMIT else [])


def choice(selection: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The setting to recommend, chosen on the selection side only (StereoSet dev, CrowS half A).

    Eligible: run in every category, and in none of them CrowS-Pairs further from 50 beyond its paired
    interval or LMS down more than LMS_DROP_LIMIT. Ranked by how far both benchmarks moved toward 50: the
    change of abs(SS - 50) plus the change of abs(CrowS - 50), in points, averaged over the categories
    (points, not the % cut: religion's dev split starts 3.6 points from 50, where a % explodes)."""
    categories = list(selection)
    names = [n for n in SETTINGS if all(n in selection[c] for c in categories)]
    ranked, refused = [], []
    for name in names:
        ms = {c: selection[c][name] for c in categories}
        bad = [f"{c}: {', '.join(why)}" for c, m in ms.items() if (why := _refusal(m))]
        ss = sum(abs(m["ss"] - 50) - abs(m["base_ss"] - 50) for m in ms.values()) / len(ms)
        crows = sum(abs(m["crows"] - 50) - abs(m["base_crows"] - 50) for m in ms.values()) / len(ms)
        (refused if bad else ranked).append((ss + crows, ss, crows, name, "; ".join(bad)))
    lines = [
        "Choice (selection side only): eligible = CrowS-Pairs not further from 50 beyond its interval and LMS "
        f"drop <= {LMS_DROP_LIMIT:g} in every category ({', '.join(categories)}); ranked by how far both "
        "benchmarks moved toward 50 (mean over the categories of the change of abs(score - 50), points; "
        "negative: toward 50).",
        "",
        "| rank | setting | StereoSet + CrowS-Pairs | StereoSet | CrowS-Pairs | refused because |",
        "|---|---|---|---|---|---|",
    ]
    for i, (both, ss, crows, name, _) in enumerate(sorted(ranked)):
        shown = f"**{name}**" if i == 0 else name
        lines.append(f"| {i + 1} | {shown} | {both:+.2f} | {ss:+.2f} | {crows:+.2f} | |")
    for both, ss, crows, name, why in sorted(refused):
        lines.append(f"| - | {name} | {both:+.2f} | {ss:+.2f} | {crows:+.2f} | {why} |")
    return lines


def write_report(args: argparse.Namespace) -> str:
    from vdata.core.io import write_json_atomic, write_text_atomic

    bases = {
        p.stem.removeprefix("base-"): json.loads(p.read_text()) for p in sorted(args.work.glob("base-*.json"))
    }
    runs = {c: r for c, r in done_runs(args.work).items() if c in bases}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    runs = dict(sorted(runs.items(), key=lambda kv: order.get(kv[0], 99)))
    metrics = all_metrics(runs, bases)
    lines = [
        "# bench/debias_categories.py",
        "",
        "Selection (choose settings here): StereoSet DEV split, CrowS-Pairs seeded half A (seed 0).",
        "",
        *table(metrics["selection"]),
        "",
        "Report (quote these; not used for choosing): StereoSet TEST split, CrowS-Pairs the other half B.",
        "",
        *table(metrics["report"]),
        "",
        *choice(metrics["selection"]),
        "",
        "| category | setting | train examples | steps | train s | eval s |",
        "|---|---|---|---|---|---|",
    ]
    for category, by_setting in runs.items():
        for name, (_, ev) in by_setting.items():
            m = ev["manifest"]
            lines.append(
                f"| {category} | {name} | {m['counts']['train_examples']} | {m['steps']} | "
                f"{m['train_seconds']:.0f} | {ev.get('eval_seconds', 0):.0f} |"
            )
    text = "\n".join(lines) + "\n"
    write_text_atomic(args.work / "results.md", text)
    write_json_atomic(args.work / "summary.json", metrics)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/vdata-bench-categories"))
    p.add_argument("--data-dir", type=Path, default=Path(os.environ["VDATA_DATA_DIR"]))
    p.add_argument("--categories", default="race,religion,gender")
    p.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}"
    )
    p.add_argument("--report", action="store_true", help="only print the tables of what is done")
    p.add_argument("--torch-threads", type=int, default=0)
    args = p.parse_args()
    args.categories = [c for c in args.categories.split(",") if c]
    args.settings = [s for s in args.settings.split(",") if s]
    bad = [c for c in args.categories if c not in CATEGORIES] + [
        s for s in args.settings if s not in SETTINGS
    ]
    if bad:
        p.error(f"unknown category or setting: {', '.join(bad)}")
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.report:
        if args.torch_threads:
            import torch

            torch.set_num_threads(args.torch_threads)
        run_grid(args)
    print(write_report(args))


if __name__ == "__main__":
    sys.exit(main())
