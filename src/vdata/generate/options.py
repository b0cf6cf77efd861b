"""The `vdata gen` options file: its schema, defaults and validation.

Unknown keys, wrong types, unknown categories, providers or strategies are user errors (exit code 2) whose
message names the key and what is allowed. The allowed providers and strategies, and each provider's
defaults, come from their registries (`vdata.generate.providers`, `vdata.generate.strategy_registry`).
`vdata schema gen` prints `options_schema()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from vdata.core.errors import UserError
from vdata.core.records import BASE_CATEGORIES, validate_category
from vdata.core.settings import StageSettings, validate_settings
from vdata.generate.batch_options import BatchOptions
from vdata.generate.providers import PROVIDERS, ProviderSpec
from vdata.generate.strategy_registry import STRATEGIES
from vdata.generate.verify.settings import VerifySettings

DEFAULT_PROVIDER = "local"
SCHEMA_HINT = "See `vdata schema gen` for every key."
# With the verification gate on, the default `max_requests` is this many times larger.
GATE_REQUEST_FACTOR = 4

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


class RateLimit(StageSettings):
    rpm: float | None = Field(None, gt=0, description="Requests per minute (token bucket).")
    tpm: float | None = Field(
        None, gt=0, description="Tokens per minute, prompt + completion (token bucket)."
    )


class Price(StageSettings):
    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens.")
    batch_input_per_mtok: float | None = Field(
        None, ge=0, description="Batch API price (default: the table's discount)."
    )
    batch_output_per_mtok: float | None = Field(
        None, ge=0, description="Batch API price (default: the table's discount)."
    )


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _registry_schema(schema: dict[str, Any]) -> None:
    """Fill in what the registries know (names, defaults, backends) when the schema is generated, so
    providers and strategies registered after import appear too."""
    schema["examples"] = [EXAMPLE_OPTIONS]
    props = schema["properties"]
    specs = [spec for _, spec in PROVIDERS.entries()]
    props["provider"]["enum"] = [spec.name for spec in specs]
    props["provider"]["description"] = "; ".join(f"{spec.name} = {spec.description}" for spec in specs) + "."
    props["model"]["description"] = (
        "Model name. Default per provider: "
        + ", ".join(f"{spec.name}: {spec.default_model}" for spec in specs)
        + " (what else each accepts: see `provider`)."
    )
    props["strategy"]["enum"] = STRATEGIES.names()
    props["backend"]["enum"] = list(dict.fromkeys(b for spec in specs for b in spec.backends))
    props["backend"]["description"] = (
        ". ".join(f"{spec.name}: {spec.backend_help}" for spec in specs if spec.backend_help) + "."
    )


class GenOptions(StageSettings):
    """What `vdata gen` generates, with which model, and within which limits."""

    model_config = ConfigDict(json_schema_extra=_registry_schema)

    provider: str = Field(DEFAULT_PROVIDER, description="Registered provider name.")
    model: str | None = Field(None, description="Model name (default: the provider's).")
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible server (vLLM, Ollama, llama.cpp server, gateways), e.g. http://localhost:8000/v1",
    )
    strategy: str = Field("targeted", description="How prompts are built; see docs/generate.md.")
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
    concurrency: int = Field(
        8, ge=1, le=4096, description="Requests in flight at once (default: the provider's; local: 32)."
    )
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
        None,
        ge=1,
        description="Give up after this many requests (default: 20 + 10 x count / per_request, x 4 with the "
        "verification gate on).",
    )
    max_retries: int = Field(5, ge=0, le=50, description="Retries per request on 429/5xx/timeouts.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout in seconds.")
    cache: bool = Field(True, description="Cache responses on disk so reruns resume without paying twice.")
    backend: str = Field("auto", description="How the provider runs requests (per provider).")
    batch_size: int = Field(8, ge=1, le=512, description="local transformers backend: sequences per batch.")
    batch: bool = Field(
        False,
        description="Send requests through the provider's batch API (openai, gemini): about half price, hours.",
    )
    batch_options: BatchOptions = Field(
        default_factory=BatchOptions, description="With batch: polling, retries, job size."
    )
    verify: bool | None = Field(
        None,
        description="Verification gate: check every candidate record before it is written (form checks and "
        "a counter-stereotype judge model). Default: on for the local provider, off otherwise.",
    )
    constrain: bool = Field(
        True,
        description="Force replies into the strategy's line format while they are decoded (a grammar), where "
        "the provider can (the local llama.cpp model) and the strategy declares one (targeted).",
    )
    judge_model: str | None = Field(
        None,
        description="Verification gate: the model that judges counter-stereotypes (default: the embedded "
        "model, the one `vdata debias` trains by default); a Hugging Face id, checkpoint or debias output.",
    )
    verify_options: VerifySettings = Field(
        default_factory=VerifySettings, description="Verification gate: checks, judge rule and margin."
    )

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        out = [validate_category(c) for c in v]
        return list(dict.fromkeys(out))

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in PROVIDERS:
            raise ValueError(f"unknown provider '{v}'; available: {_quoted(PROVIDERS.names())}")
        return v

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy '{v}'; available: {_quoted(STRATEGIES.names())}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        """Unset model, per_request, max_tokens and concurrency take the provider's defaults (filled before
        validation, so they are checked like given values)."""
        if not isinstance(data, dict):
            return data
        name = data.get("provider", DEFAULT_PROVIDER)
        spec = PROVIDERS.find(name) if isinstance(name, str) else None
        if spec is None:
            return data  # the provider field reports it
        defaults = {
            "model": spec.default_model,
            "per_request": spec.default_per_request,
            "max_tokens": spec.default_max_tokens,
            "concurrency": spec.default_concurrency,
        }
        return {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}

    @model_validator(mode="after")
    def _fits_the_provider(self) -> GenOptions:
        spec = self.provider_spec
        if self.backend not in spec.backends:
            raise ValueError(
                f"backend '{self.backend}' does not apply to provider '{self.provider}'; "
                f"allowed: {', '.join(spec.backends)}"
            )
        if self.base_url and not spec.accepts_base_url:
            # Providers for any compatible server first: they are what base_url is mostly for.
            with_url = [
                name
                for name, s in sorted(PROVIDERS.entries(), key=lambda e: not e[1].key_optional_with_base_url)
                if s.accepts_base_url
            ]
            raise ValueError(
                f"base_url is only used with provider {' or '.join(repr(n) for n in with_url)}, "
                f"not {self.provider!r}"
            )
        return self

    @property
    def provider_spec(self) -> ProviderSpec:
        return PROVIDERS.get(self.provider)

    @property
    def gate_on(self) -> bool:
        """Whether candidates go through the verification gate (`verify`, by default only when local)."""
        return self.verify if self.verify is not None else self.provider == DEFAULT_PROVIDER

    @property
    def request_limit(self) -> int:
        """`max_requests`, by default 20 + 10 x the requests `count` needs at `per_request` each."""
        if self.max_requests is not None:
            return self.max_requests
        # The verification gate drops most of a small model's candidates: allow that many more requests.
        tries = GATE_REQUEST_FACTOR if self.gate_on else 1
        return 20 + 10 * tries * -(-self.count // (self.per_request or 1))


def parse_options(raw: Any, source: str = "options") -> GenOptions:
    if not isinstance(raw, dict):
        raise UserError(
            f"{source}: the options file must hold a JSON object such as {json.dumps(EXAMPLE_OPTIONS)}"
        )
    return validate_settings(GenOptions, raw, source=source, hint=SCHEMA_HINT)


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
