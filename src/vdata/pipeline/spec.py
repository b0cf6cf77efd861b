"""The pipeline file read by `vdata run`: generate -> audit -> debias -> eval before/after.

Example (YAML):

    name: gender-lora
    model: smollm2-135m              # the model to debias and evaluate
    generate:                        # optional; omit and list `data:` to use existing datasets
      options: {strategy: targeted, categories: [gender], count: 40}   # a `vdata gen` options object,
      # options_file: examples/demo-gender.json                         # ... or a file
    data: []                         # extra datasets (vdata records or Han et al. files)
    audit: {filter: true}            # optional; with filter the cleaned data is what gets trained on
    debias: {method: lora, objective: sentence, cda: gender, epochs: 2}
    eval: {benchmarks: [stereoset, crows_pairs], bias_types: [gender], limit: 200}

Each mapping under `audit`, `debias` and `eval` is passed to that command as flags: `key: value` becomes
`--key value` (underscores become dashes), `true` becomes a bare `--key`, lists are comma-joined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdata.core.errors import UserError


class GenerateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: dict[str, Any] | None = None
    options_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> GenerateSpec:
        if (self.options is None) == (self.options_file is None):
            raise ValueError("generate needs exactly one of 'options' (inline) or 'options_file'")
        return self


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = "smollm2-135m"
    workdir: str | None = None
    data_dir: str | None = None
    generate: GenerateSpec | None = None
    data: list[str] = Field(default_factory=list)
    audit: dict[str, Any] | None = None
    debias: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_data(self) -> PipelineSpec:
        if self.generate is None and not self.data:
            raise ValueError("the pipeline has no data: add a 'generate' section or list files under 'data'")
        return self


def load_spec(path: Path) -> PipelineSpec:
    if not path.exists():
        raise UserError(f"pipeline file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with at least 'name' and 'generate' or 'data'")
    try:
        return PipelineSpec(**raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        allowed = ", ".join(PipelineSpec.model_fields)
        raise UserError(f"{path}: {where}: {first['msg']} (top-level keys: {allowed})") from e


def as_flags(options: dict[str, Any]) -> list[str]:
    """{'bias_types': ['gender'], 'merge': True, 'limit': 50} -> ['--bias-types', 'gender', '--merge', '--limit', '50']"""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv
