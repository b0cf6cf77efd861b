"""Typed settings: one pydantic model per stage, validated the same way everywhere.

Every stage declares its settings once, as a `StageSettings` model (Field bounds, Literal choices). The
CLI maps flags onto it, the pipeline embeds it, the docs print its schema. `validate_settings` turns a
pydantic ValidationError into one `UserError` that names each bad key, what was wrong, and the keys
allowed there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from vdata.core.errors import UserError

M = TypeVar("M", bound=BaseModel)


class StageSettings(BaseModel):
    """Base of every stage's settings: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def comma_list(value: Any) -> Any:
    """'a, b' -> ['a', 'b']: a list setting spelled as a command-line flag value; lists pass through.

    For `field_validator(..., mode="before")` on list settings, so the CLI and a pipeline file can say either.
    """
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names allowed at `loc`'s parent (walks nested models by field annotation)."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        current = next(
            (
                a
                for a in (annotation, *getattr(annotation, "__args__", ()))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else None


def describe_error(model: type[BaseModel], err: Mapping[str, Any], prefix: str = "") -> str:
    """One pydantic error as a sentence: 'unknown option x (allowed: ...)' or 'option x: msg (got ...)'."""
    loc = tuple(err.get("loc", ()))
    path = ".".join(str(x) for x in loc)
    if prefix == "--":  # command-line flags are spelled with dashes
        path = path.replace("_", "-")
    where = prefix + path if loc else (prefix.rstrip(".") or "(top level)")
    if err.get("type") == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        tail = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown option '{where}'{tail}"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        return f"option '{where}' is required"
    shown = json.dumps(err.get("input"), default=str)
    return f"option '{where}': {msg} (got {shown[:80]})"


def describe_validation_error(model: type[BaseModel], error: ValidationError, prefix: str = "") -> str:
    return "; ".join(describe_error(model, e, prefix) for e in error.errors())


def validate_settings(
    model: type[M], data: Mapping[str, Any] | Any, *, source: str, hint: str = "", prefix: str = ""
) -> M:
    """`model.model_validate(data)`, or a UserError: '{source}: problems. {hint}'."""
    if not isinstance(data, Mapping):
        raise UserError(
            f"{source}: expected a mapping of settings, got {type(data).__name__}. {hint}".strip()
        )
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        message = f"{source}: {describe_validation_error(model, e, prefix)}"
        raise UserError(f"{message}. {hint}" if hint else message) from None
