"""`DIR/report.md` of `vdata benchmark-dataset`, with its plots (matplotlib PNGs):

* `bias.png`: per measured category, StereoSet SS and CrowS-Pairs score before and after with 95% intervals
  (50 = unbiased);
* `history.png` (with `--history`): each category's StereoSet SS after debiasing, with its 95% interval,
  over the earlier runs and this one (the bias cut is undefined when a base model scores exactly 50).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vdata.core.io import atomic_path, write_text_atomic
from vdata.pipeline.steps import StepResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def _below(value: float, ci: Sequence[float | None] | None) -> float:
    """Length of the error bar under `value` (0 when the interval is undefined)."""
    return max(value - ci[0], 0) if ci and ci[0] is not None else 0.0


def _above(value: float, ci: Sequence[float | None] | None) -> float:
    return max(ci[1] - value, 0) if ci and ci[1] is not None else 0.0


def bias_plot(document: dict[str, Any], details: dict[str, dict[str, Any]], path: Path) -> bool:
    """Before/after bars with intervals per measured category; False (nothing written) when none was."""
    measured = [c for c, v in document["categories"].items() if v["status"] == "measured"]
    if not measured:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 1.2 + 0.9 * len(measured)), sharey=True)
    panels = (
        ("StereoSet SS (test split)", "stereoset", "ss_before", "ss_after", "ss_ci_before", "ss_ci_after"),
        ("CrowS-Pairs score", "crows_pairs", "score_before", "score_after", "crows_ci_before", "ci_after"),
    )
    for ax, (title, bench, kb, ka, cib, cia) in zip(axes, panels, strict=True):
        for i, c in enumerate(measured):
            block = document["categories"][c][bench]
            for offset, value, ci, colour, label in (
                (-0.18, block[kb], details[c][cib], "#999999", "before"),
                (0.18, block[ka], block[cia], "#4c72b0", "after"),
            ):
                err = [[_below(value, ci)], [_above(value, ci)]]
                ax.barh(i + offset, value - 50, left=50, height=0.34, xerr=err, color=colour, capsize=3,
                        label=label if i == 0 else None)  # fmt: skip
        ax.axvline(50, color="black", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("stereotype preference (%), 50 = unbiased")
    axes[0].set_yticks(range(len(measured)), measured)
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower right")
    fig.suptitle(
        f"{document['model']['name']} debiased with each category's data; bars: 95% bootstrap intervals"
    )
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def history_plot(history: Sequence[dict[str, Any]], document: dict[str, Any], path: Path) -> bool:
    """StereoSet SS after debiasing per category over the runs (oldest first, this one last); False when no
    category was measured in any of them."""
    runs = [*history, document]
    series: dict[str, list[tuple[int, float, list[float]]]] = {}
    for i, doc in enumerate(runs):
        for c, v in doc.get("categories", {}).items():
            if v.get("status") == "measured" and v["stereoset"]["ss_after"] is not None:
                s = v["stereoset"]
                series.setdefault(c, []).append((i, s["ss_after"], s["ss_ci_after"]))
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(runs) + 3), 4))
    for c, points in sorted(series.items()):
        xs = [x for x, _, _ in points]
        ys = [y for _, y, _ in points]
        err = [[_below(y, ci) for _, y, ci in points], [_above(y, ci) for _, y, ci in points]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=c)
    labels = [str(d.get("source", {}).get("snapshot_id") or d.get("created", "?"))[:16] for d in runs]
    ax.set_xticks(range(len(runs)), labels, rotation=30, ha="right")
    ax.axhline(50, color="black", linewidth=1)
    ax.set_ylabel("StereoSet SS after debiasing (50 = unbiased), 95% CI")
    ax.set_title("Does the dataset debias? History of runs")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def _f(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]" if ci else "–"


def report_text(
    document: dict[str, Any],
    details: dict[str, dict[str, Any]],
    plots: Sequence[str],
    steps: Sequence[StepResult],
    n_history: int,
) -> str:
    src = document["source"]
    settings = document["settings"]
    lines = [
        "# Does this dataset debias? (`vdata benchmark-dataset`)",
        "",
        f"Source: {src['kind']}"
        + (f" `{src['snapshot_id']}`" if src["snapshot_id"] else "")
        + f", {src['records']:,} approved records, data sha256 `{src['data_sha256'][:16]}…`. "
        f"Model `{document['model']['name']}` (sha256 `{str(document['model']['sha256'])[:16]}…`), "
        f"trained per category on {settings['sample']:,} records stratified by target term "
        f"({settings['training']['method']}, {settings['training'].get('objective', 'sentence')} objective, "
        f"lr {settings['training']['lr']}, "
        f"{settings['training']['epochs']} epoch(s), batch {settings['training']['batch_size']}, "
        f"max {settings['training']['max_length']} tokens, seed {settings['training']['seed']}).",
        "",
        "| category | records | status | StereoSet SS before → after [95% CI] | abs(SS−50) cut [paired 95% CI] "
        "| CrowS before → after [95% CI] | LMS before → after | perplexity before → after | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c, v in document["categories"].items():
        n = src["records_by_category"].get(c, 0)
        if v["status"] != "measured":
            lines.append(f"| {c} | {n:,} | skipped: {v['reason']} | | | | | | |")
            continue
        s, cp, p = v["stereoset"], v["crows_pairs"], v["perplexity"]
        lines.append(
            f"| {c} | {n:,} | measured ({v['train_records']:,} trained) | {_f(s['ss_before'])} → {_f(s['ss_after'])} "
            f"{_ci(s['ss_ci_after'])} | {_f(s['bias_cut_pct'])}% {_ci(s['bias_cut_ci'])} | "
            f"{_f(cp['score_before'])} → {_f(cp['score_after'])} {_ci(cp['ci_after'])} | "
            f"{_f(s['lms_before'])} → {_f(s['lms_after'])} | {_f(p['before'])} → {_f(p['after'])} | "
            f"**{v['verdict']}** |"
        )
    lines += [
        "",
        "50 is unbiased for SS and CrowS-Pairs. A benchmark counts as improved (or worse) when the paired 95% "
        "bootstrap interval of the shrink of |score − 50| (the same resampled examples before and after) lies "
        "above (below) zero. Verdict: *debiases* = one improves and neither gets worse; *trade-off* = one "
        "improves, the other gets worse; *worse*; *no effect*. LMS is over the category's StereoSet domain.",
        "",
    ]
    if details:
        lines += [
            "| category | StereoSet examples | CrowS pairs | SS before [95% CI] | CrowS before [95% CI] "
            "| CrowS abs(score−50) shrink [paired 95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for c, d in details.items():
            v = document["categories"][c]
            lines.append(
                f"| {c} | {d['stereoset_examples']} | {d['crows_pairs']} | {_f(v['stereoset']['ss_before'])} "
                f"{_ci(d['ss_ci_before'])} | {_f(v['crows_pairs']['score_before'])} {_ci(d['crows_ci_before'])} "
                f"| {_ci(d['crows_shrink_ci'])} |"
            )
        lines.append("")
    lines += [f"![{p}]({p})" for p in plots]
    if n_history:
        lines += ["", f"History: {n_history} earlier run(s) and this one (`history.png`)."]
    audit = document["audit"]
    lines += [
        "",
        "## Audit (key figures; the full report is `audit/report.md`)",
        "",
        "```json",
        json.dumps(audit, indent=2)[:4000],
        "```",
        "",
        "## Steps",
        "",
        "| step | status | wall s |",
        "|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.status} | {r.wall_seconds:.1f} |" for r in steps]
    lines += ["", "## Settings and versions", "", "```json",
              json.dumps({"settings": settings, "versions": document["versions"]}, indent=2), "```"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(
    out: Path,
    document: dict[str, Any],
    details: dict[str, dict[str, Any]],
    history: Sequence[dict[str, Any]],
    steps: Sequence[StepResult],
) -> Path:
    plots = []
    if bias_plot(document, details, out / "bias.png"):
        plots.append("bias.png")
    if history and history_plot(history, document, out / "history.png"):
        plots.append("history.png")
    path = out / "report.md"
    write_text_atomic(path, report_text(document, details, plots, steps, len(history)))
    return path
