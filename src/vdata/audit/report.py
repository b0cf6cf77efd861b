"""Rendering audit reports: report.json, report.md, PNG plots and the terminal summary table.

Several datasets (`--compare`) share one table and one set of plots, datasets side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vdata.core.io import atomic_path

# (label, path into the report, format) for the summary table.
SUMMARY_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("records", ("n_records",), "int"),
    ("vocabulary size", ("diversity", "vocab_size"), "int"),
    ("distinct-1", ("diversity", "distinct_1"), "f3"),
    ("distinct-2", ("diversity", "distinct_2"), "f3"),
    ("distinct-3", ("diversity", "distinct_3"), "f3"),
    ("distinct-2 on the sample", ("diversity", "sample_distinct", "distinct_2"), "f3"),
    ("self-BLEU (lower = more diverse)", ("diversity", "self_bleu"), "f3"),
    ("APS (lower = more diverse)", ("diversity", "aps"), "f3"),
    ("APS within categories", ("diversity", "aps_within_mean"), "f3"),
    ("APS across categories", ("diversity", "aps_across"), "f3"),
    ("records mentioning a group", ("groups_summary", "share_with_any_group"), "pct"),
    ("mean group entropy", ("groups_summary", "mean_entropy"), "f3"),
    ("exact duplicates", ("hygiene", "exact_duplicates"), "int"),
    ("near duplicates", ("hygiene", "near_duplicates"), "int"),
    ("refusals / meta-text", ("hygiene", "refusals"), "int"),
    ("malformed", ("hygiene", "malformed"), "int"),
    ("benchmark overlap", ("hygiene", "benchmark_overlap"), "int"),
    ("other language", ("hygiene", "other_language"), "int"),
    ("direction: data more likely", ("direction", "share_data_more_likely"), "pct"),
)


def dig(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = report
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    return f"{float(value):.3f}"


def summary_table(reports: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="vdata audit", show_lines=False)
    table.add_column("metric")
    for label in reports:
        table.add_column(label, justify="right")
    for name, path, kind in SUMMARY_ROWS:
        values = [dig(r, path) for r in reports.values()]
        if path[0] == "direction" and all(v is None for v in values):
            continue
        table.add_row(name, *(fmt(v, kind) for v in values))
    cats = sorted({c for r in reports.values() for c, v in r["groups"].items() if v["records"]})
    for cat in cats:
        table.add_row(
            f"{cat}: entropy (records)",
            *(
                f"{fmt(r['groups'][cat]['entropy'], 'f3')} ({r['groups'][cat]['records']:,})"
                if cat in r["groups"]
                else "-"
                for r in reports.values()
            ),
        )
    return table


def print_summary(reports: dict[str, dict[str, Any]], console: Console | None = None) -> None:
    (console or Console()).print(summary_table(reports))


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def markdown(reports: dict[str, dict[str, Any]], plots: list[str]) -> str:
    labels = list(reports)
    lines = ["# vdata audit report", ""]
    lines += ["| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name, path, kind in SUMMARY_ROWS:
        values = [dig(r, path) for r in reports.values()]
        if path[0] == "direction" and all(v is None for v in values):
            continue
        lines.append(f"| {name} | " + " | ".join(fmt(v, kind) for v in values) + " |")
    for label, r in reports.items():
        lines += ["", f"## {label}", "", f"Sources: {', '.join(r.get('sources', []))}", ""]
        lines += [
            "### Group balance",
            "",
            "| category | records | groups present | entropy | top groups |",
            "|---|---|---|---|---|",
        ]
        for cat, g in r["groups"].items():
            if not g["records"]:
                continue
            top = sorted(g["group_counts"].items(), key=lambda kv: -kv[1])[:4]
            lines.append(
                f"| {cat} | {g['records']:,} | {g['groups_present']}/{g['groups_defined']} | "
                f"{fmt(g['entropy'], 'f3')} | " + ", ".join(f"{k} {v}" for k, v in top if v) + " |"
            )
        skews = [(cat, g["attribute_skew"]) for cat, g in r["groups"].items() if g["attribute_skew"]["top"]]
        if skews:
            lines += [
                "",
                "### Attribute words paired with groups (most over-represented first)",
                "",
                "| category | attribute | group | count | share | base share | lift |",
                "|---|---|---|---|---|---|---|",
            ]
            for cat, skew in skews:
                for row in skew["top"][:5]:
                    lines.append(
                        f"| {cat} | {row['attribute']} | {row['group']} | {row['count']} | {row['share']:.2f} | "
                        f"{row['base_share']:.2f} | {row['lift']:.2f} |"
                    )
        if r.get("intersections"):
            lines += [
                "",
                "### Intersectional coverage",
                "",
                "| categories | cells covered | coverage |",
                "|---|---|---|",
            ]
            for name, inter in r["intersections"].items():
                lines.append(
                    f"| {name} | {inter['cells_covered']}/{inter['cells']} | {inter['coverage']:.2f} |"
                )
        cov = r.get("attribute_coverage")
        if cov:
            lines += [
                "",
                "### Attribute coverage",
                "",
                f"{cov['records']:,} records with attributes; combinations seen {cov['combinations_seen']:,} "
                f"of {cov['combinations_possible']:,}.",
                "",
                "| key | values | evenness |",
                "|---|---|---|",
            ]
            for key, info in cov["keys"].items():
                lines.append(f"| {key} | {info['n_values']} | {fmt(info['evenness'], 'f3')} |")
        hyg = r["hygiene"]
        lines += ["", "### Hygiene", ""]
        for key, examples in hyg["examples"].items():
            if not hyg.get(key):
                continue
            lines.append(f"- **{key}**: {hyg[key]:,}")
            for ex in examples:
                why = f" ({ex['why']})" if ex.get("why") else ""
                text = ex.get("text", "").replace("|", "\\|")
                lines.append(f"  - `{ex['id'] or '-'}` {ex['where']}{why}: {text}")
        d = r.get("direction")
        if d and d.get("n_pairs"):
            lines += [
                "",
                "### Stereotype direction",
                "",
                f"Model `{d['model']}`, {d['n_pairs']} sentence/counterfactual pairs: the data sentence is more "
                f"likely in {100 * d['share_data_more_likely']:.1f}% (mean difference "
                f"{d['mean_difference']:+.3f}). {d['interpretation']}.",
            ]
        if r.get("filter"):
            f = r["filter"]
            lines += [
                "",
                "### Filter",
                "",
                f"Wrote {f['kept']:,} records to `{f['path']}`; removed "
                + ", ".join(f"{k} {v:,}" for k, v in f["removed"].items())
                + ".",
            ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def plot_all(reports: dict[str, dict[str, Any]], out_dir: Path) -> list[str]:
    """Write the PNG plots; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written: list[str] = []
    labels = list(reports)
    width = 0.8 / max(1, len(labels))

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        written.append(name)

    # Diversity: ratios side by side.
    metrics = [
        ("distinct_1", "distinct-1"),
        ("distinct_2", "distinct-2"),
        ("distinct_3", "distinct-3"),
        ("self_bleu", "self-BLEU"),
        ("aps", "APS"),
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(metrics))
    for k, label in enumerate(labels):
        vals = [reports[label]["diversity"].get(m) or 0.0 for m, _ in metrics]
        ax.bar(x + k * width, vals, width, label=label)
    ax.set_xticks(x + width * (len(labels) - 1) / 2, [n for _, n in metrics])
    ax.set_ylim(0, 1)
    ax.set_title(
        "Diversity (distinct-n: higher = more diverse; self-BLEU, APS: lower = more diverse)", fontsize=9
    )
    ax.legend(fontsize=8)
    save(fig, "diversity.png")

    # Group distributions, one panel per category that any dataset mentions.
    cats = sorted({c for r in reports.values() for c, v in r["groups"].items() if v["records"]})
    if cats:
        cols = min(3, len(cats))
        rows = (len(cats) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
        for ax, cat in zip(axes.flat, cats, strict=False):
            groups = list(
                next(r["groups"][cat]["group_counts"] for r in reports.values() if cat in r["groups"])
            )
            gx = np.arange(len(groups))
            for k, label in enumerate(labels):
                dist = reports[label]["groups"].get(cat, {}).get("distribution", {})
                ax.bar(gx + k * width, [dist.get(g, 0.0) for g in groups], width, label=label)
            ax.set_xticks(gx + width * (len(labels) - 1) / 2, groups, rotation=45, ha="right", fontsize=7)
            ax.set_title(f"{cat}", fontsize=9)
            ax.set_ylim(0, 1)
        for ax in list(axes.flat)[len(cats) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle("Share of group mentions per category")
        save(fig, "groups.png")

    # Hygiene counts as a share of records.
    keys = [
        "exact_duplicates",
        "near_duplicates",
        "refusals",
        "malformed",
        "benchmark_overlap",
        "other_language",
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(keys))
    for k, label in enumerate(labels):
        r = reports[label]
        n = max(1, r["n_records"])
        ax.bar(x + k * width, [100 * r["hygiene"].get(key, 0) / n for key in keys], width, label=label)
    ax.set_xticks(
        x + width * (len(labels) - 1) / 2, [k.replace("_", " ") for k in keys], rotation=20, fontsize=8
    )
    ax.set_ylabel("% of records")
    ax.set_title("Hygiene")
    ax.legend(fontsize=8)
    save(fig, "hygiene.png")

    # Stereotype direction histograms.
    with_direction = [lb for lb in labels if (reports[lb].get("direction") or {}).get("n_pairs")]
    if with_direction:
        fig, ax = plt.subplots(figsize=(7, 4))
        for label in with_direction:
            ax.hist(reports[label]["direction"]["differences"], bins=20, alpha=0.5, label=label)
        ax.axvline(0, color="black", linewidth=1)
        ax.set_xlabel("score(sentence) - score(counterfactual)")
        ax.set_title("Stereotype direction (left of 0: data counters the model)")
        ax.legend(fontsize=8)
        save(fig, "direction.png")

    # Intersectional heatmap (gender x race when present, else the first pair) for each dataset.
    for label in labels:
        inter = reports[label].get("intersections") or {}
        if not inter:
            continue
        name = next((k for k in inter if k in ("gender x race", "race x gender")), next(iter(inter)))
        cell = inter[name]
        fig, ax = plt.subplots(figsize=(1 + 0.6 * len(cell["columns"]), 1 + 0.5 * len(cell["rows"])))
        im = ax.imshow(np.asarray(cell["counts"]), cmap="Blues")
        ax.set_xticks(range(len(cell["columns"])), cell["columns"], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(cell["rows"])), cell["rows"], fontsize=7)
        ax.set_title(f"{label}: {name}", fontsize=8)
        fig.colorbar(im, ax=ax)
        save(fig, f"intersections-{_slug(label)}.png")
    return written


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:60] or "data"
