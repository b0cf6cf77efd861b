"""`verify_options`: how the verification gate judges candidate records (declared once, here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from vdata.core.settings import StageSettings, comma_list

JudgeRule = Literal["attribute_given_group", "whole_sentence"]
# Chosen on StereoSet's dev split with the embedded model (bench/gate_separation.py, docs/generate.md).
DEFAULT_MARGIN = 0.0


class VerifySettings(StageSettings):
    """Which checks run and how the counter-stereotype model judge decides."""

    checks: list[str] | None = Field(
        None,
        description="Checks to run, in order (default: every built-in form check, then the model judge; "
        "docs/generate.md lists the built-in ones).",
    )
    rule: JudgeRule = Field(
        "attribute_given_group",
        description="Model judge: attribute_given_group compares log p(attribute | the words before it) "
        "with the group term vs its counterpart(s); whole_sentence compares the sentences' mean log-probs.",
    )
    margin: float = Field(
        DEFAULT_MARGIN,
        ge=0,
        le=20,
        description="Model judge: keep a record when the counterpart's score exceeds the record's own "
        "by at least this many nats.",
    )
    max_counterparts: int = Field(
        4, ge=1, le=50, description="Model judge: counterpart terms tried per record (race, religion)."
    )
    language: str = Field("en", description="Language the sentences must be in (form check `language`).")
    llm_judge: bool = Field(
        False, description="Also ask the generating provider, with a short rubric (API providers)."
    )
    batch_size: int = Field(
        64, ge=1, le=4096, description="Records gated together (one batched judge call per group)."
    )

    @field_validator("checks", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_list(value)
