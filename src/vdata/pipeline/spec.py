"""The pipeline file read by `vdata run`: generate -> audit -> debias -> eval before/after.

Example (YAML):

    name: gender-lora
    model: smollm2-135m              # the model to debias and evaluate
    generate:                        # optional; omit and list `data:` to use existing datasets
      options: {strategy: targeted, categories: [gender], count: 40}   # a `vdata gen` options object,
      # options_file: examples/demo-gender.json                         # ... or a file
    data: []                         # extra datasets (vdata records or Han et al. files)
    audit: {filter: true}            # optional; with filter the cleaned data is what gets trained on
    debias: {method: lora, objective: sentence, cda: [gender], epochs: 2}
    eval: {benchmarks: [stereoset, crows_pairs], bias_types: [gender], limit: 200}

Each section is the stage's own settings model (the keys are the stage's settings, the same names as its
command-line flags with underscores: `vdata audit --embed-sample` is `embed_sample`, `--no-plots` is
`plots: false`), less what the pipeline provides itself (the data, the model, the output paths). The
whole file, every section included, is validated before the first step runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, create_model, model_validator

from vdata.audit.settings import AuditSettings
from vdata.core.errors import UserError
from vdata.core.settings import StageSettings, validate_settings
from vdata.debias.settings import DebiasOptions
from vdata.evaluate.settings import EvalSettings
from vdata.generate.options import GenOptions, load_options, parse_options


def stage_section(model: type[StageSettings], provided: set[str], name: str, **extra: Any) -> Any:
    """`model`'s fields less those the pipeline fills in (`provided`), plus `extra` fields, as a new model.

    The fields (types, bounds, defaults, descriptions) are the stage's own: declared once, there.
    """
    fields: dict[str, Any] = {
        field: (info.annotation, info) for field, info in model.model_fields.items() if field not in provided
    }
    return create_model(name, __base__=StageSettings, **fields, **extra)


# `filter` in the pipeline is a switch: the pipeline chooses where the cleaned data goes.
AuditSection = stage_section(
    AuditSettings,
    {"data", "out", "filter"},
    "AuditSection",
    filter=(bool, Field(False, description="Train on the audit's cleaned data.")),
)


class GenerateSection(StageSettings):
    options: dict[str, Any] | None = None
    options_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> GenerateSection:
        if (self.options is None) == (self.options_file is None):
            raise ValueError("generate needs exactly one of 'options' (inline) or 'options_file'")
        return self

    def load(self, spec_dir: Path) -> GenOptions:
        """The `vdata gen` options this section names, validated."""
        if self.options_file is not None:
            path = Path(self.options_file)
            return load_options(path if path.is_absolute() else spec_dir / path)
        return parse_options(self.options, "generate.options")


class PipelineSpec(StageSettings):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = "smollm2-135m"
    workdir: str | None = None
    data_dir: str | None = None
    generate: GenerateSection | None = None
    data: list[str] = Field(default_factory=list)
    audit: AuditSection | None = None  # type: ignore[valid-type]
    debias: DebiasOptions = Field(default_factory=DebiasOptions)
    eval: EvalSettings = Field(default_factory=EvalSettings)

    @model_validator(mode="after")
    def _has_data(self) -> PipelineSpec:
        if self.generate is None and not self.data:
            raise ValueError("the pipeline has no data: add a 'generate' section or list files under 'data'")
        return self


def load_spec(path: Path) -> PipelineSpec:
    """Read and validate a pipeline file, every section included (nothing runs before all of it is valid)."""
    if not path.exists():
        raise UserError(f"pipeline file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with at least 'name' and 'generate' or 'data'")
    spec = validate_settings(PipelineSpec, raw, source=str(path))
    if spec.generate is not None:
        spec.generate.load(path.resolve().parent)  # the generate options are checked now, not after a step
    return spec


def spec_document(spec: PipelineSpec) -> dict[str, Any]:
    """The spec as plain JSON values (for reports and fingerprints)."""
    return json.loads(spec.model_dump_json())
