"""Human-readable outputs: markdown summary, PNG bar chart, and before/after comparison."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from vdata.core.io import atomic_path, write_json_atomic, write_text_atomic
from vdata.evaluate.registry import all_benchmarks


def _fmt(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _ci(ci: Any) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if isinstance(ci, list | tuple) and len(ci) == 2 else "–"


def metric_rows(results: dict[str, Any]) -> Iterator[tuple[str, str, float, list[float] | None]]:
    """(benchmark, row label, value, 95% interval or None) for every number worth comparing."""
    for bench, block in results.items():
        if bench in {"model", "provenance", "perplexity", "perplexity_tokens"} or not isinstance(block, dict):
            continue
        if "intrasentence" in block:
            for domain, row in block["intrasentence"].items():
                yield bench, f"{domain} SS", row["SS"], row.get("ss_ci95")
                yield bench, f"{domain} LMS", row["LMS"], None
                yield bench, f"{domain} ICAT", row["ICAT"], None
        else:
            for group, row in block.items():
                yield bench, f"{group} metric", row["metric"], row.get("ci95")
    if results.get("perplexity") is not None:
        yield "capability", "perplexity", results["perplexity"], None


def markdown_summary(results: dict[str, Any]) -> str:
    prov = results.get("provenance", {})
    lines = [f"# vdata eval: {results.get('model')}", ""]
    for bench, block in results.items():
        if not isinstance(block, dict) or bench == "provenance":
            continue
        if "intrasentence" in block:
            lines += [
                f"## StereoSet intrasentence ({block['split']})",
                "",
                "| domain | SS (50 = unbiased) | SS 95% CI | LMS | ICAT | examples |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {d} | {_fmt(r['SS'])} | {_ci(r.get('ss_ci95'))} | {_fmt(r['LMS'])} | {_fmt(r['ICAT'])} "
                f"| {r['n']} |"
                for d, r in block["intrasentence"].items()
            ]
        else:
            lines += [
                f"## {bench}",
                "",
                "| bias type | metric (50 = unbiased) | 95% CI | pairs |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {g} | {_fmt(r['metric'])} | {_ci(r.get('ci95'))} | {r['n']} |" for g, r in block.items()
            ]
        lines.append("")
    if results.get("perplexity") is not None:
        lines += [
            f"Perplexity on the --ppl-text file: {results['perplexity']:.2f} "
            f"({results.get('perplexity_tokens')} tokens)",
            "",
        ]
    keys = (
        "model_sha256",
        "start_token",
        "batch_size",
        "dtype",
        "wall_seconds",
        "vdata_version",
        "created_at",
    )
    lines += ["## Provenance", ""] + [f"- {k}: `{prov[k]}`" for k in keys if prov.get(k) is not None]
    lines += [f"- data `{rel}`: sha256 `{sha}`" for rel, sha in prov.get("data_sha256", {}).items()]
    return "\n".join(lines) + "\n"


def bar_chart(results: dict[str, Any], path: Path) -> None:
    """Bias scores with 95% intervals around the 50 line (unbiased), one bar per domain / bias type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (f"{b}: {label.removesuffix(' SS').removesuffix(' metric')}", v, ci)
        for b, label, v, ci in metric_rows(results)
        if label.endswith((" SS", " metric"))
    ]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1)))
    if rows:
        labels, values, cis = zip(*rows, strict=True)
        err = [
            [max(v - c[0], 0) if c else 0 for v, c in zip(values, cis, strict=True)],
            [max(c[1] - v, 0) if c else 0 for v, c in zip(values, cis, strict=True)],
        ]
        y = range(len(rows))
        ax.barh(list(y), [v - 50 for v in values], left=50, xerr=err, color="#4c72b0", capsize=3)
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
    ax.axvline(50, color="black", linewidth=1)
    ax.set_xlabel("stereotype preference (%); 50 = unbiased; bars show 95% bootstrap intervals")
    ax.set_title(f"vdata eval: {results.get('model')}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    """Whether two 95% intervals overlap; None when either is missing or holds a nan."""
    if not a or not b or any(isinstance(x, float) and math.isnan(x) for x in (*a, *b)):
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


Direction = Literal["toward 50", "away from 50", "within interval", "no interval"]
Verdict = Literal["debiases", "trade-off", "no effect", "worse"]
# Pooled rows (several categories at once) get no verdict of their own.
SUMMARY_GROUPS = {"overall", "bias_bench", "all"}
# Group names that differ between benchmarks but mean the same category.
CATEGORY_ALIASES = {"race-color": "race"}


class ComparisonRow(TypedDict):
    """One number both results files hold, before and after (JSON-ready)."""

    benchmark: str  # results key ("stereoset", "crows_pairs", ...) or "capability"
    label: str  # row within it: "gender SS", "race-color metric", "perplexity"
    metric: str  # both in words: "StereoSet gender SS", "CrowS-Pairs race-color", "Perplexity"
    before: float
    after: float
    delta: float  # after - before; nan when either is nan
    ci_before: list[float] | None
    ci_after: list[float] | None
    overlap: bool | None  # the 95% intervals overlap; None when either is missing or nan
    significant: bool  # the intervals are separate (unlikely to be noise)
    bias_reduction_pct: NotRequired[float]  # bias scores only (50 = unbiased): shrink of |score - 50|
    # Bias scores only: the paired 95% interval of |after - 50| - |before - 50| when the caller had
    # per-example outcomes of both runs, and which way the score moved beyond its interval.
    paired_change_ci: NotRequired[list[float]]
    direction: NotRequired[Direction]


def _metric_name(bench: str, label: str) -> str:
    if bench == "capability":
        return label.capitalize()
    definition = all_benchmarks().get(bench)
    title = definition.title if definition is not None else bench
    return f"{title} {label.removesuffix(' metric')}"


def bias_direction(
    before: float, after: float, ci_after: list[float] | None, paired_change_ci: list[float] | None = None
) -> Direction:
    """Which way a bias score (50 = unbiased) moved, beyond noise.

    With a paired interval of the change of |score - 50| (same examples resampled before and after) the
    move counts when that interval excludes 0. Without one, it counts when the before value lies outside
    the after run's 95% interval (the weaker test `vdata eval compare` can do from results files alone).
    """
    if paired_change_ci is not None and not any(_is_nan(x) for x in paired_change_ci):
        if paired_change_ci[1] < 0:
            return "toward 50"
        return "away from 50" if paired_change_ci[0] > 0 else "within interval"
    if not ci_after or any(_is_nan(x) for x in (before, after, *ci_after)):
        return "no interval"
    if ci_after[0] <= before <= ci_after[1]:
        return "within interval"
    return "toward 50" if abs(after - 50) < abs(before - 50) else "away from 50"


def comparison_rows(
    before: dict[str, Any],
    after: dict[str, Any],
    paired: Mapping[tuple[str, str], list[float]] | None = None,
) -> list[ComparisonRow]:
    """Every number of `after` that `before` also has (every benchmark, then perplexity), with its
    delta, intervals and whether they overlap. `paired` maps (benchmark, label) of a bias score to the
    paired 95% interval of its change of |score - 50|, where the caller had per-example outcomes."""
    old = {(b, label): (v, ci) for b, label, v, ci in metric_rows(before)}
    rows: list[ComparisonRow] = []
    for bench, label, value, ci in metric_rows(after):
        if (bench, label) not in old:
            continue
        v0, ci0 = old[(bench, label)]
        overlap = _overlap(ci0, ci)
        row = ComparisonRow(
            benchmark=bench,
            label=label,
            metric=_metric_name(bench, label),
            before=v0,
            after=value,
            delta=math.nan if _is_nan(value) or _is_nan(v0) else value - v0,
            ci_before=ci0,
            ci_after=ci,
            overlap=overlap,
            significant=overlap is False,
        )
        if label.endswith((" SS", " metric")):  # 50 = unbiased: the distance from 50 is what shrinks
            db, da = abs(v0 - 50), abs(value - 50)
            row["bias_reduction_pct"] = 100 * (db - da) / db if db > 0 else math.nan
            paired_ci = (paired or {}).get((bench, label))
            if paired_ci is not None:
                row["paired_change_ci"] = list(paired_ci)
            row["direction"] = bias_direction(v0, value, ci, paired_ci)
        rows.append(row)
    return rows


class CategoryVerdict(TypedDict):
    """What a before/after comparison says about one bias category across every benchmark that has it."""

    category: str
    verdict: Verdict
    better: list[str]  # metrics that moved toward 50 beyond their interval
    worse: list[str]  # metrics that moved away from 50 beyond their interval
    unchanged: list[str]  # metrics whose change is within the interval (or has none)


def row_category(row: ComparisonRow) -> str | None:
    """The bias category of a bias-score row ("race" for StereoSet race and CrowS-Pairs race-color);
    None for capability rows and pooled summaries."""
    if "direction" not in row:
        return None
    group = row["label"].removesuffix(" SS").removesuffix(" metric")
    return None if group in SUMMARY_GROUPS else CATEGORY_ALIASES.get(group, group)


def category_verdicts(rows: list[ComparisonRow]) -> list[CategoryVerdict]:
    """Per category: "debiases" (some benchmark toward 50, none away), "trade-off" (one toward 50 and
    another away, each beyond its interval: not a win), "worse" (away, none toward), "no effect"."""
    by_category: dict[str, CategoryVerdict] = {}
    for r in rows:
        category = row_category(r)
        if category is None:
            continue
        v = by_category.setdefault(
            category,
            CategoryVerdict(category=category, verdict="no effect", better=[], worse=[], unchanged=[]),
        )
        side = {"toward 50": "better", "away from 50": "worse"}.get(r["direction"], "unchanged")
        v[side].append(r["metric"])  # type: ignore[literal-required]
    for v in by_category.values():
        if v["better"] and v["worse"]:
            v["verdict"] = "trade-off"
        elif v["better"]:
            v["verdict"] = "debiases"
        elif v["worse"]:
            v["verdict"] = "worse"
    return list(by_category.values())


def _describe(rows: list[ComparisonRow], metric: str) -> str:
    r = next(x for x in rows if x["metric"] == metric)
    if "paired_change_ci" in r:
        ci = r["paired_change_ci"]
        change = abs(r["after"] - 50) - abs(r["before"] - 50)
        how = f"distance to 50 {change:+.2f}, paired CI {_ci(ci)}"
    else:
        how = f"before value outside the after CI {_ci(r['ci_after'])}"
    return f"{metric} {_fmt(r['before'])} → {_fmt(r['after'])} ({how})"


def verdict_lines(rows: list[ComparisonRow]) -> list[str]:
    """Markdown: one line per category, trade-offs first and spelled out; a headline when any exists."""
    verdicts = category_verdicts(rows)
    order: dict[str, int] = {"trade-off": 0, "worse": 1, "debiases": 2, "no effect": 3}
    verdicts.sort(key=lambda v: order[v["verdict"]])
    lines = ["## Verdict per bias category", ""]
    tradeoffs = [v["category"] for v in verdicts if v["verdict"] in ("trade-off", "worse")]
    if tradeoffs:
        lines += [
            f"**Not a win: {', '.join(tradeoffs)} got more biased on at least one benchmark, beyond its "
            "interval.** Read every benchmark before calling this model debiased.",
            "",
        ]
    for v in verdicts:
        parts = [f"better: {_describe(rows, m)}" for m in v["better"]]
        parts += [f"**worse**: {_describe(rows, m)}" for m in v["worse"]]
        if v["unchanged"]:
            parts.append("within interval: " + ", ".join(v["unchanged"]))
        lines.append(f"- **{v['category']}: {v['verdict']}**. " + "; ".join(parts))
    lines += [
        "",
        "A benchmark counts as moved when its paired 95% interval of the change of |score − 50| excludes 0"
        " (per-example outcomes of both runs), else when the before value lies outside the after 95% interval.",
    ]
    return lines


def compare_table(
    before: dict[str, Any],
    after: dict[str, Any],
    paired: Mapping[tuple[str, str], list[float]] | None = None,
) -> str:
    """Markdown table of every shared number with its delta (`*` marks non-overlapping 95% intervals),
    then the verdict per bias category (trade-offs spelled out)."""
    lines = [
        f"# vdata eval compare: {before.get('model')} → {after.get('model')}",
        "",
        "| benchmark | metric | before | after | delta | intervals |",
        "|---|---|---|---|---|---|",
    ]
    rows = comparison_rows(before, after, paired)
    for r in rows:
        ci0, ci, delta = r["ci_before"], r["ci_after"], r["delta"]
        note = "–" if r["overlap"] is None else ("overlap" if r["overlap"] else "**no overlap** *")
        lines.append(
            f"| {r['benchmark']} | {r['label']} | {_fmt(r['before'])} {_ci(ci0) if ci0 else ''} | "
            f"{_fmt(r['after'])} {_ci(ci) if ci else ''} | {'+' if delta > 0 else ''}{_fmt(delta)} | {note} |"
        )
    marked = sum(r["significant"] for r in rows)
    lines += [
        "",
        f"`*` {marked} change(s) whose 95% bootstrap intervals do not overlap (unlikely to be noise).",
        "",
        *verdict_lines(rows),
    ]
    return "\n".join(lines) + "\n"


def write_results(
    results: dict[str, Any],
    out: Path,
    predictions: dict[str, Any] | None = None,
    predictions_out: Path | None = None,
) -> list[Path]:
    """Write `vdata eval`'s outputs: predictions (if asked), OUT.md, OUT.png, then OUT (the results JSON).

    The results file is written last, so it exists only when everything else succeeded.
    """
    written: list[Path] = []
    if predictions_out is not None and predictions is not None:
        write_json_atomic(predictions_out, predictions)
        written.append(predictions_out)
    md, png = out.with_suffix(".md"), out.with_suffix(".png")
    write_text_atomic(md, markdown_summary(results))
    bar_chart(results, png)
    write_json_atomic(out, results)
    return [*written, md, png, out]
