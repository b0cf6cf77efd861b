"""`vdata benchmark-dataset`'s settings, declared once (the CLI maps its flags onto them, the docs cite them).

`RECOMMENDED_TRAINING` is how a category's sample is trained: `vdata debias`'s defaults, which are the setting
measured best on both StereoSet and CrowS-Pairs across the categories (docs/results.md: a Pfeiffer bottleneck
adapter, reduction factor 16, lr 3e-4, one epoch, batch 16, at most 40 tokens, seed 0, attribute objective). When a later experiment recommends another setting, change the defaults in
`vdata.debias.settings`: the fingerprint of every debias step includes them, so the next run retrains.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from vdata.core.settings import StageSettings
from vdata.debias.settings import DebiasOptions
from vdata.lm.models import DEFAULT_MODEL

RECOMMENDED_TRAINING = DebiasOptions()

# The StereoSet domain and the CrowS-Pairs bias type that measure each record category. A category needs
# both: a debiasing result counts only with both benchmarks reported (one can improve while the other gets
# worse, as docs/results.md found for LoRA on gender).
STEREOSET_DOMAIN: dict[str, str] = {"gender": "gender", "race": "race", "religion": "religion"}
CROWS_BIAS_TYPE: dict[str, str] = {
    "gender": "gender",
    "race": "race-color",
    "religion": "religion",
    "age": "age",
    "disability": "disability",
    "sexual-orientation": "sexual-orientation",
    "nationality": "nationality",
    "socioeconomic": "socioeconomic",
    "physical-appearance": "physical-appearance",
}


class BenchmarkSettings(StageSettings):
    source: str = Field(
        min_length=1,
        description="A server database URL, a snapshot folder (or a folder of snapshots: the latest is "
        "used), or record files (.jsonl/.csv/.parquet, comma-separated).",
    )
    out: Path = Field(description="Folder for benchmark.json, report.md, plots and the resumable steps.")
    model: str = Field(
        DEFAULT_MODEL, min_length=1, description="Model to debias: smollm2-135m, a HF id or path."
    )
    history: list[Path] = Field(
        default_factory=list,
        description="Earlier benchmark.json files, or folders holding one, for the history plot.",
    )
    sample: int = Field(
        1000, ge=1, description="Training records per category: a sample stratified by target term."
    )
    min_records: int = Field(
        200, ge=1, description="Categories with fewer clean (audit-filtered) records are skipped."
    )
    eval_limit: int | None = Field(
        None,
        ge=1,
        description="Only the first N StereoSet examples per domain and CrowS-Pairs pairs per bias type "
        "(default: all).",
    )
    ppl_sentences: int = Field(
        200, ge=1, description="StereoSet test contexts (natural text) for the perplexity figure."
    )
    resamples: int = Field(1000, ge=10, description="Bootstrap resamples of the 95% intervals.")
    seed: int = Field(0, ge=0, description="Seed of the training samples and the bootstrap.")
    batch_size: int = Field(64, ge=1, description="Sentences per forward pass when evaluating.")
    audit_sample: int = Field(1000, ge=2, description="The audit's self-BLEU sample.")
    audit_embed_sample: int = Field(1000, ge=0, description="The audit's embedding sample (0 skips it).")
    data_dir: Path | None = Field(None, description="Folder with the benchmark data.")
    training: DebiasOptions = Field(
        default_factory=lambda: RECOMMENDED_TRAINING.model_copy(),
        description="How each category's sample is trained (default: the recommended setting).",
    )

    @field_validator("history", mode="before")
    @classmethod
    def _history_list(cls, value: object) -> object:
        return [value] if isinstance(value, str | Path) else value
