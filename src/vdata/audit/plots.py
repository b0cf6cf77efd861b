"""PNG plots of audit reports: diversity, group shares, hygiene, stereotype direction, intersections.

Several datasets (`--compare`) share one set of plots, datasets side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vdata.audit.partial import HYGIENE_KEYS
from vdata.core.io import atomic_path


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
    keys = list(HYGIENE_KEYS)
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
