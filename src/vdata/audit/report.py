"""Rendering audit reports as text: report.md and the terminal summary table (plots: plots.py).

Several datasets (`--compare`) share one table, datasets side by side.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

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
        lines += direction_section(r.get("direction"))
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


def direction_section(direction: dict[str, Any] | None) -> list[str]:
    """report.md's stereotype-direction lines: the measurement, or that it was not measured and why."""
    if not direction:
        return []
    if direction.get("measured") is False:
        return [
            "",
            "### Stereotype direction",
            "",
            f"Not measured: {direction['reason']}. To measure it, {direction['how']}.",
        ]
    if not direction.get("n_pairs"):
        return []
    return [
        "",
        "### Stereotype direction",
        "",
        f"Model `{direction['model']}`, {direction['n_pairs']} sentence/counterfactual pairs: the data sentence "
        f"is more likely in {100 * direction['share_data_more_likely']:.1f}% (mean difference "
        f"{direction['mean_difference']:+.3f}). {direction['interpretation']}.",
    ]
