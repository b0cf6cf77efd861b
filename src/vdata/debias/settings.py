"""Every setting of a `vdata debias` run, declared once (bounds, choices, defaults, help text).

`DebiasOptions` is how to train (what a pipeline's ``debias:`` mapping holds); `DebiasSettings` adds the
model, the data files and the output folder. The CLI maps its flags onto `DebiasSettings` and validates them
with `vdata.core.settings.validate_settings`; nothing else repeats a default or checks a choice.
List settings (`cda`, `mitigation`) also accept one comma-separated string, as the flags give them.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator

from vdata.core.cda import CdaMode
from vdata.core.settings import StageSettings, comma_list

Method = Literal["lora", "bottleneck", "full"]
Objective = Literal["sentence", "attribute"]
Mitigation = Literal["token", "mask", "loss"]
MITIGATIONS: tuple[str, ...] = get_args(Mitigation)
DEFAULT_LEARNING_RATES: dict[str, float] = {"lora": 2e-4, "bottleneck": 3e-4, "full": 2e-5}
# Run controls and locations: they do not change what is trained, so a run's fingerprint leaves them out.
NOT_FINGERPRINTED = ("out", "stop_after_steps", "data_dir")
# Settings added after runs were made: fingerprinted only when set, so that a run finished or interrupted
# before they existed (which trained exactly as they do when unset) is still found and resumed.
FINGERPRINTED_WHEN_SET = ("balance_terms",)


class DebiasOptions(StageSettings):
    """How to train: every setting of a run but the model, the data files and the output folder."""

    # The defaults are the setting that moved BOTH StereoSet and CrowS-Pairs furthest toward 50 across
    # gender, race and religion (bench/debias_categories.py, chosen on StereoSet dev and half of CrowS-Pairs;
    # docs/results.md): a bottleneck adapter, lr 3e-4, one epoch, at most 40 tokens, and the attribute
    # objective, which leaves the group term untrained (training on it made group names likelier as such).
    method: Method = Field("bottleneck", description="bottleneck | lora | full")
    objective: Objective = Field(
        "attribute", description="attribute (loss on the attribute word only) | sentence (the whole sentence)"
    )
    cda: list[str] = Field(
        default_factory=list, description="Two-sided CDA categories, e.g. gender,race,religion."
    )
    cda_mode: CdaMode = Field("cased", description="cased | bias-bench (case-sensitive matching)")
    word_lists: str | None = Field(None, description="Own CDA word lists (JSON).")
    mix_corpus: str | None = Field(None, description="Original text to mix in.")
    # Declared after mix_corpus: its check reads mix_corpus.
    bias_ratio: float | None = Field(None, ge=0, le=1, description="Synthetic share R in [0, 1].")
    mitigation: list[Mitigation] = Field(
        default_factory=list, description="Bias-inheritance mitigations: token,mask,loss"
    )
    kl_coef: float = Field(1.0, ge=0, description="`loss` mitigation: weight of the KL term.")
    synthetic_weight: float = Field(
        1.0, ge=0, description="`loss` mitigation: weight of synthetic tokens' cross-entropy."
    )
    balance_groups: int = Field(
        0,
        ge=0,
        description="Group-balanced data: each sentence also trained with N versions naming another group "
        "(CDA word-list swap when its target is in the word lists, else another target of the data).",
    )
    balance_terms: list[str] = Field(
        default_factory=list,
        description="`balance_groups`: the counterpart groups for targets outside the word lists (default: "
        "the data's own targets), e.g. white,Caucasian. Measured on race: naming one group as every "
        "sentence's counterpart overshoots CrowS-Pairs (docs/results.md).",
    )
    group_kl: float = Field(
        0.0,
        ge=0,
        description="Weight of a KL term holding the group terms' probabilities on neutral template "
        "sentences to the base model's (0: off).",
    )
    epochs: int = Field(1, ge=1, description="Passes over the training data.")
    batch_size: int = Field(16, ge=1, description="Examples per batch.")
    grad_accum: int = Field(1, ge=1, description="Batches per optimizer step.")
    lr: float | None = Field(None, gt=0, description="Default: 3e-4 bottleneck, 2e-4 LoRA, 2e-5 full.")
    warmup_ratio: float = Field(0.06, ge=0, le=1, description="Share of the steps with linear warm-up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_length: int = Field(40, ge=4, description="Tokens per example (longer ones are cut).")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Held-out share for early stopping.")
    patience: int = Field(2, ge=0, description="Evaluations without improvement before stopping.")
    eval_every: int = Field(0, ge=0, description="Validate every N steps (0: once per epoch).")
    save_every: int = Field(50, ge=0, description="Checkpoint every N optimizer steps.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (scaling).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_targets: str = Field("all-linear", description="all-linear or module names, comma-separated.")
    reduction_factor: int = Field(16, ge=1, description="Bottleneck adapter reduction factor.")
    # Declared after method: its check reads method.
    merge: bool = Field(False, description="Also save the LoRA-merged model in DIR/merged.")
    seed: int = Field(0, description="Seed of data order, splits, CDA, masking and initialisation.")
    limit: int | None = Field(None, ge=0, description="Use only the first N synthetic examples.")
    data_dir: str | None = Field(None, description="Benchmark data dir (for word lists).")
    stop_after_steps: int | None = Field(
        None, ge=0, description="Time-boxing: stop after N steps, leaving a resumable checkpoint."
    )

    @field_validator("cda", mode="before")
    @classmethod
    def _split_cda(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("balance_terms", mode="before")
    @classmethod
    def _split_balance_terms(cls, value: Any, info: ValidationInfo) -> Any:
        value = comma_list(value)
        if value and not info.data.get("balance_groups"):
            raise ValueError("needs --balance-groups N (how many counterpart versions of each sentence)")
        if isinstance(value, list) and any(not str(t).strip() for t in value):
            raise ValueError("has an empty term; give terms separated by commas, e.g. white,Caucasian")
        return value

    @field_validator("mitigation", mode="before")
    @classmethod
    def _known_mitigations(cls, value: Any) -> Any:
        value = comma_list(value)
        if isinstance(value, list):
            bad = [str(m) for m in value if m not in MITIGATIONS]
            if bad:
                raise ValueError(
                    f"unknown --mitigation {', '.join(bad)}; choose from {', '.join(MITIGATIONS)}"
                )
        return value

    @field_validator("mix_corpus")
    @classmethod
    def _corpus_needs_sentence_objective(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The attribute objective labels only a record's attribute word; corpus lines have none, so they
        # would all be dropped without a word.
        if value and info.data.get("objective") == "attribute":
            raise ValueError(
                "needs --objective sentence: the attribute objective (the default) trains only the attribute "
                "word of each record, and corpus lines have none"
            )
        return value

    @field_validator("bias_ratio", mode="before")
    @classmethod
    def _share(cls, value: Any, info: ValidationInfo) -> Any:
        # Before the Field bounds, so that the message says what R is.
        if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1 (the synthetic share)")
        if value is not None and not info.data.get("mix_corpus"):
            raise ValueError("needs --mix-corpus FILE (the original text to mix with)")
        return value

    @field_validator("merge")
    @classmethod
    def _merge_is_lora_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("method") != "lora":
            raise ValueError(
                "applies to LoRA only (bottleneck adapters cannot be merged; full saves a model)"
            )
        return value

    def learning_rate(self) -> float:
        """`lr`, or the method's default."""
        return self.lr if self.lr is not None else DEFAULT_LEARNING_RATES[self.method]


class DebiasSettings(DebiasOptions):
    """Every setting of a run; all of them but `NOT_FINGERPRINTED` go into the run's fingerprint."""

    model: str = Field(
        min_length=1, description="Base model: smollm2-135m, a HF id/path (causal or masked LM)."
    )
    data: list[str] = Field(
        min_length=1, description="Training data files (vdata records or Han et al. JSON)."
    )
    out: str = Field(min_length=1, description="Output directory.")

    def fingerprint_fields(self) -> dict[str, Any]:
        """The settings that decide what is trained (with the effective learning rate)."""
        fields = self.model_dump(exclude=set(NOT_FINGERPRINTED))
        for name in FINGERPRINTED_WHEN_SET:
            if not fields[name]:
                del fields[name]
        fields["lr"] = self.learning_rate()
        return fields
