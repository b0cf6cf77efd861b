"""`vdata eval`'s settings, declared once: the CLI maps its flags onto `EvalSettings`, the pipeline
embeds it (its `eval:` section), and `runner.run_model(model, settings)` runs it.

Everything that can be checked without data files or a model is checked here (bounds, choices, known
benchmarks, bias types that exist); the runner only locates and checksums files and loads the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from vdata.core.settings import StageSettings, comma_list
from vdata.evaluate.registry import all_benchmarks

DEFAULT_RESAMPLES = 1000  # bootstrap resamples for the 95% intervals
DEFAULT_BENCHMARKS = ("stereoset", "crows_pairs")
SPLITS = ("test", "dev")


class EvalSettings(StageSettings):
    benchmarks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS),
        description="Benchmarks to run (comma list or list): stereoset, crows_pairs, biastestgpt, ...",
    )
    split: Literal["test", "dev"] = Field(
        "test", description="StereoSet split: test (what bias-bench reports) or dev."
    )
    bias_types: list[str] | None = Field(
        None, description="Bias types to keep, e.g. gender,race,religion (aliases: race = race-color)."
    )
    limit: int | None = Field(None, ge=1, description="Only the first N examples of each domain / bias type.")
    batch_size: int = Field(64, ge=1, description="Sentences per forward pass.")
    start_token: str | None = Field(
        None, description="Causal LMs: the token the first word is conditioned on (default BOS, else EOS)."
    )
    data_dir: Path | None = Field(None, description="Folder holding the benchmark files.")
    ppl_text: Path | None = Field(None, description="Also report perplexity on this text file (causal LMs).")
    seed: int = Field(0, ge=0, description="Bootstrap seed for the 95% intervals.")
    resamples: int = Field(DEFAULT_RESAMPLES, ge=1, description="Bootstrap resamples.")
    crows_protocol: Literal["bias-bench", "lm-eval"] = Field(
        "bias-bench",
        description="How paired benchmarks (CrowS-Pairs, ...) score a pair: bias-bench's per-token scheme "
        "(vdata's contract), or lm-evaluation-harness's crows_pairs_english (causal LMs; for cross-checks).",
    )
    dtype: Literal["float32", "float64", "float16", "bfloat16"] = Field(
        "float32", description="Model dtype (float32 reproduces bias-bench)."
    )

    @field_validator("split", mode="before")
    @classmethod
    def _known_split(cls, value: Any) -> Any:
        if value not in SPLITS:
            raise ValueError("--split must be test or dev")
        return value

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _benchmark_list(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("bias_types", mode="before")
    @classmethod
    def _bias_type_list(cls, value: Any) -> Any:
        return comma_list(value) or None

    @field_validator("benchmarks")
    @classmethod
    def _known_benchmarks(cls, names: list[str]) -> list[str]:
        known = all_benchmarks()
        if not names:
            raise ValueError(f"--benchmarks is empty; name at least one of {', '.join(known)}")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        return names

    @field_validator("bias_types")
    @classmethod
    def _bias_types_exist(cls, bias_types: list[str] | None, info: ValidationInfo) -> list[str] | None:
        known = all_benchmarks()
        for name in info.data.get("benchmarks") or []:  # absent when the benchmarks were invalid
            d = known[name]
            if not d.resolve_groups(bias_types):
                raise ValueError(
                    f"none of the bias types {bias_types} exists in {d.name}; it has "
                    f"{', '.join(d.groups)}" + (f" (aliases: {d.aliases})" if d.aliases else "")
                )
        return bias_types
