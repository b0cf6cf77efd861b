"""The vdata record: one generated debiasing sentence with its provenance.

Every stage reads and writes these. The `id` is a content hash of the normalised text, so the same
sentence produced twice (by two runs, two providers or two contributors) is recognised as a duplicate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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

# The fields anyone can read once a record is approved (the public `records` view, GET, pull).
PUBLIC_COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "target",
    "attribute",
    "category",
    "strategy",
    "provider",
    "model",
    "created_at",
    "contributor",
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
    # The verification gate's results ({name, value, pass} per check), when the record went through it.
    checks: list[dict[str, Any]] | None = None

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


# Longest value the public dataset server stores per record field (the text is limited by the Record model).
FIELD_LIMITS: dict[str, int] = {
    "target": 1000,
    "attribute": 1000,
    "category": 200,
    "strategy": 40,
    "provider": 200,
    "model": 300,
    "prompt_sha256": 64,
    "created_at": 40,
    "vdata_version": 40,
}
# Record fields that hold structured values; files such as CSV hold them as JSON text.
JSON_FIELDS: tuple[str, ...] = ("attributes", "params", "checks")


def file_row_values(row: object) -> dict[str, Any]:
    """A row read from a file (JSON lines, CSV, Parquet) made ready for `parse_record`: empty cells and
    nulls dropped (the field takes its default), `attributes`/`params` held as JSON text decoded.
    Raises ValueError(reason)."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    values = {k: v for k, v in row.items() if v is not None and v != ""}
    for key in JSON_FIELDS:
        if isinstance(values.get(key), str):
            try:
                values[key] = json.loads(values[key])
            except json.JSONDecodeError as e:
                raise ValueError(f"{key}: not valid JSON ({e.msg})") from None
    return values


def parse_record(row: object) -> Record:
    """One record from untyped data (a JSON object, or a file row after `file_row_values`); a null value
    means the field's default. Raises ValueError(reason) naming the field at fault."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    unknown = [str(k) for k in row if k not in RECORD_FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(RECORD_FIELDS)}")
    try:
        return Record(**{k: v for k, v in row.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise ValueError(f"{where}: {first['msg']}") from None


# Categories repeat across a batch; canonicalise each spelling once.
_canonical_category = functools.lru_cache(maxsize=4096)(validate_category)


def check_publishable(record: Record, strategies: Collection[str] | None = None) -> Record:
    """The public dataset's rules on top of the Record model: field lengths (FIELD_LIMITS), no NUL
    characters (PostgreSQL text cannot hold one), a known category (made canonical in place) and, when
    `strategies` is given, a strategy among them. Returns the record; raises ValueError(reason)."""
    if "\x00" in record.text:
        raise ValueError("text: contains a NUL character")
    for name, limit in FIELD_LIMITS.items():
        value = getattr(record, name)
        if len(value) > limit:
            raise ValueError(f"{name}: longer than {limit} characters")
        if "\x00" in value:
            raise ValueError(f"{name}: contains a NUL character")
    if record.category:
        record.category = _canonical_category(record.category)
    if strategies is not None and record.strategy and record.strategy not in strategies:
        raise ValueError(f"strategy: unknown {record.strategy!r}; allowed: {', '.join(strategies)}")
    return record
