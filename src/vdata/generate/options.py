"""The `vdata gen` options file: its schema, defaults and validation.

Unknown keys, wrong types, unknown categories or strategies are user errors (exit code 2) whose
message names the key and what is allowed. `vdata schema gen` prints `GenOptions.model_json_schema()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vdata.core.errors import UserError
from vdata.core.records import BASE_CATEGORIES, STRATEGIES, validate_category

PROVIDERS = ("local", "openai", "gemini")
DEFAULT_MODELS = {"local": "smollm2-135m", "openai": "gpt-4o-mini", "gemini": "gemini-2.0-flash"}
# Which environment variables hold a key, in lookup order (after -k/--apikey).
KEY_VARIABLES = {
    "openai": ("APIKEY", "OPENAI_API_KEY"),
    "gemini": ("APIKEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
}

EXAMPLE_OPTIONS: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "strategy": "targeted",
    "categories": ["gender", "race+gender"],
    "count": 500,
    "temperature": 0.7,
    "concurrency": 16,
    "rate_limit": {"rpm": 500, "tpm": 200000},
    "budget_usd": 2.0,
}


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: float | None = Field(None, gt=0, description="Requests per minute (token bucket).")
    tpm: float | None = Field(
        None, gt=0, description="Tokens per minute, prompt + completion (token bucket)."
    )


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens.")


class GenOptions(BaseModel):
    """What `vdata gen` generates, with which model, and within which limits."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_OPTIONS]})

    provider: Literal["local", "openai", "gemini"] = Field(
        "local", description="local = embedded SmolLM2-135M-Instruct (no key, no network); openai; gemini."
    )
    model: str | None = Field(
        None,
        description="Model name. Default per provider: "
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_MODELS.items())
        + ". For local: any Hugging Face causal LM id/path or a .gguf file.",
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible server (vLLM, Ollama, llama.cpp server, gateways), e.g. http://localhost:8000/v1",
    )
    strategy: Literal[STRATEGIES] = Field(
        "targeted", description="How prompts are built; see docs/generate.md."
    )  # type: ignore[valid-type]
    categories: list[str] = Field(
        default_factory=lambda: ["gender"],
        min_length=1,
        description=f"Bias categories: {', '.join(BASE_CATEGORIES)}; intersections like 'race+gender'.",
    )
    count: int = Field(100, ge=1, le=10_000_000, description="Valid, unique records wanted.")
    per_request: int | None = Field(
        None, ge=1, le=500, description="Sentences asked for per request (default 10 remote, 3 local)."
    )
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int | None = Field(
        None,
        ge=16,
        le=100_000,
        description="Completion token limit per request (default 1500 remote, 160 local).",
    )
    seed: int = Field(
        0, description="Base seed; request i uses seed + i, so a rerun asks the same questions."
    )
    concurrency: int = Field(8, ge=1, le=4096, description="Requests in flight at once.")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    budget_usd: float | None = Field(None, gt=0, description="Stop cleanly before spending more than this.")
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Override/extend the price table: {model: {input_per_mtok, output_per_mtok}}.",
    )
    format: Literal["jsonl", "csv", "parquet"] | None = Field(
        None, description="Default: from OUT's extension."
    )
    prompts: str | None = Field(
        None, description="YAML file with your own prompt templates (see docs/generate.md)."
    )
    terms: dict[str, list[str]] | None = Field(
        None,
        description="targeted: group terms per category; skips the term-generation stage for those categories.",
    )
    attributes: dict[str, list[str]] | None = Field(
        None,
        description='attributed: attribute dimensions and their values, e.g. {"tone": ["formal", "casual"]}.',
    )
    propose_attributes: bool = Field(
        False,
        description="attributed: ask the LLM once for the values of each dimension and save them (attributes_file).",
    )
    attributes_file: str | None = Field(
        None,
        description="attributed: where proposed attribute values are saved and reused (default OUT + .attributes.json).",
    )
    strategy_options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the chosen strategy (validated by that strategy)."
    )
    max_requests: int | None = Field(
        None, ge=1, description="Give up after this many requests (default: 20 + 10 x count / per_request)."
    )
    max_retries: int = Field(5, ge=0, le=50, description="Retries per request on 429/5xx/timeouts.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout in seconds.")
    cache: bool = Field(True, description="Cache responses on disk so reruns resume without paying twice.")
    backend: Literal["auto", "xllamacpp", "transformers", "aiohttp", "sdk"] = Field(
        "auto",
        description=(
            "local: xllamacpp (fast, GGUF) when installed, else batched transformers. openai: 'aiohttp' "
            "sends the SDK-configured request on an aiohttp session (about 4x less CPU per request), "
            "'sdk' uses the SDK's own request path; auto picks aiohttp when installed."
        ),
    )
    batch_size: int = Field(8, ge=1, le=512, description="local transformers backend: sequences per batch.")

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        out = [validate_category(c) for c in v]
        return list(dict.fromkeys(out))

    @model_validator(mode="after")
    def _fill_defaults(self) -> GenOptions:
        remote = self.provider != "local"
        if self.model is None:
            self.model = DEFAULT_MODELS[self.provider]
        if self.per_request is None:
            self.per_request = 10 if remote else 3
        if self.max_tokens is None:
            self.max_tokens = 1500 if remote else 160
        if self.max_requests is None:
            self.max_requests = 20 + 10 * -(-self.count // self.per_request)
        allowed_backends = {
            "local": ("auto", "xllamacpp", "transformers"),
            "openai": ("auto", "aiohttp", "sdk"),
            "gemini": ("auto",),
        }[self.provider]
        if self.backend not in allowed_backends:
            raise ValueError(
                f"backend '{self.backend}' does not apply to provider '{self.provider}'; "
                f"allowed: {', '.join(allowed_backends)}"
            )
        if self.base_url and self.provider == "local":
            raise ValueError(
                "base_url is only used with provider 'openai' (any OpenAI-compatible server) or 'gemini'"
            )
        return self


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = GenOptions
        allowed = ", ".join(parent.model_fields) if len(err["loc"]) == 1 else None
        if len(err["loc"]) == 2 and err["loc"][0] == "rate_limit":
            allowed = ", ".join(RateLimit.model_fields)
        tail = f"; allowed keys: {allowed}" if allowed else ""
        return f"unknown option '{loc}'{tail}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"option '{loc}': {msg} (got {json.dumps(err.get('input'), default=str)[:80]})"


def parse_options(raw: Any, source: str = "options") -> GenOptions:
    if not isinstance(raw, dict):
        raise UserError(
            f"{source}: the options file must hold a JSON object such as {json.dumps(EXAMPLE_OPTIONS)}"
        )
    try:
        return GenOptions.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(_describe(err) for err in e.errors())
        raise UserError(f"{source}: {problems}. See `vdata schema gen` for every key.") from None


def load_options(path: Path) -> GenOptions:
    if not path.is_file():
        raise UserError(f"options file {path} not found; write one like: {json.dumps(EXAMPLE_OPTIONS)}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save it as UTF-8 JSON") from None
    return parse_options(raw, str(path))


def options_schema() -> dict[str, Any]:
    return GenOptions.model_json_schema()
