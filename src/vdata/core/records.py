"""The vdata record: one generated debiasing sentence with its provenance.

Every stage reads and writes these. The `id` is a content hash of the normalised text, so the same
sentence produced twice (by two runs, two providers or two contributors) is recognised as a duplicate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vdata import __version__

# Categories a user may ask for. Intersectional categories are written "race+gender".
BASE_CATEGORIES: tuple[str, ...] = (
    "gender",
    "race",
    "religion",
    "age",
    "disability",
    "sexual-orientation",
    "nationality",
    "socioeconomic",
    "physical-appearance",
)

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Canonical form used for identity: NFKC, casefolded, whitespace collapsed, outer punctuation/quotes trimmed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _WS.sub(" ", t).strip()
    return t.strip(" \"'`“”‘’")


def record_id(text: str) -> str:
    """Content address of a sentence: the first 16 hex digits of SHA-256 of its normalised text."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def validate_category(category: str) -> str:
    """Return the canonical spelling of a (possibly intersectional) category, or raise ValueError."""
    parts = [p.strip().lower().replace("_", "-").replace(" ", "-") for p in category.split("+")]
    aliases = {"sexual_orientation": "sexual-orientation", "ses": "socioeconomic", "race-color": "race"}
    parts = [aliases.get(p, p) for p in parts]
    unknown = [p for p in parts if p not in BASE_CATEGORIES]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(
            f"unknown category {category!r}; allowed: {', '.join(BASE_CATEGORIES)}, "
            "or an intersection of distinct ones such as 'race+gender'"
        )
    return "+".join(parts)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Record(BaseModel):
    """One debiasing sentence: sentence S, social-group target term T, anti-stereotypical attribute A."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    text: str = Field(min_length=1, max_length=4000)
    target: str = ""
    attribute: str = ""
    category: str = ""
    strategy: str = ""
    attributes: dict[str, Any] | None = None
    provider: str = ""
    model: str = ""
    prompt_sha256: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utc_now)
    vdata_version: str = __version__

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        return v.strip()

    def model_post_init(self, __context: Any) -> None:
        # The id is always derived from the text: a supplied id that disagrees is corrected, so
        # identity cannot be forged by a contributor.
        self.id = record_id(self.text)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


RECORD_FIELDS: tuple[str, ...] = tuple(Record.model_fields)
