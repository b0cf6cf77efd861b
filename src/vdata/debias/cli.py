"""`vdata debias MODEL DATA... --out DIR`: maps the flags onto `DebiasSettings` and runs `run_debias`.

Each flag's default and help text are read from the setting's Field, so that defaults, bounds, choices and
help live only in `vdata.debias.settings`; list settings (`--cda`, `--mitigation`) take a comma-separated
string and default to None ("not given").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from vdata.core.settings import validate_settings
from vdata.debias.settings import DebiasSettings

SOURCE = "vdata debias"


def _option(name: str) -> Any:
    """The `--name` flag of setting `name`, with the setting's default and description."""
    field = DebiasSettings.model_fields[name]
    default = field.get_default(call_default_factory=True)
    return typer.Option(
        None if isinstance(default, list) else default, "--" + name.replace("_", "-"), help=field.description
    )


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def settings_values(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The command's parameters as setting values: settings only, those given (not None), paths as text."""
    return {k: _plain(v) for k, v in flags.items() if k in DebiasSettings.model_fields and v is not None}


def _help(name: str) -> str:
    return DebiasSettings.model_fields[name].description or ""


def register(app: typer.Typer) -> None:
    @app.command(
        "debias",
        help="Debias MODEL on DATA (vdata records or Han et al. JSON) with a Pfeiffer bottleneck adapter "
        "(default), LoRA, or full fine-tuning. Writes the adapter and manifest.json to DIR; rerunning an interrupted "
        "command resumes it.",
    )
    def debias_cmd(
        model: str = typer.Argument(..., help=_help("model")),
        data: list[Path] = typer.Argument(..., help=_help("data")),
        out: Path = typer.Option(..., "--out", help=_help("out")),
        method: str = _option("method"),
        objective: str = _option("objective"),
        cda: str | None = _option("cda"),
        cda_mode: str = _option("cda_mode"),
        word_lists: Path | None = _option("word_lists"),
        mix_corpus: Path | None = _option("mix_corpus"),
        bias_ratio: float | None = _option("bias_ratio"),
        mitigation: str | None = _option("mitigation"),
        kl_coef: float = _option("kl_coef"),
        synthetic_weight: float = _option("synthetic_weight"),
        balance_groups: int = _option("balance_groups"),
        balance_terms: str | None = _option("balance_terms"),
        group_kl: float = _option("group_kl"),
        epochs: int = _option("epochs"),
        batch_size: int = _option("batch_size"),
        grad_accum: int = _option("grad_accum"),
        lr: float | None = _option("lr"),
        warmup_ratio: float = _option("warmup_ratio"),
        max_length: int = _option("max_length"),
        val_fraction: float = _option("val_fraction"),
        patience: int = _option("patience"),
        eval_every: int = _option("eval_every"),
        save_every: int = _option("save_every"),
        lora_r: int = _option("lora_r"),
        lora_alpha: int = _option("lora_alpha"),
        lora_dropout: float = _option("lora_dropout"),
        lora_targets: str = _option("lora_targets"),
        reduction_factor: int = _option("reduction_factor"),
        merge: bool = _option("merge"),
        seed: int = _option("seed"),
        limit: int | None = _option("limit"),
        data_dir: Path | None = _option("data_dir"),
        stop_after_steps: int | None = _option("stop_after_steps"),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        flags = dict(locals())  # the parameters by name; each setting's parameter is named after it
        from rich.console import Console

        from vdata.core.progress import progress_factory
        from vdata.debias.loop import StopRequested
        from vdata.debias.train import run_debias

        settings = validate_settings(
            DebiasSettings,
            settings_values(flags),
            source=SOURCE,
            prefix="--",
            hint="See `vdata debias --help`.",
        )
        console = Console(stderr=True, quiet=quiet)
        try:
            result = run_debias(settings, progress=progress_factory(not quiet, console))
        except StopRequested as e:
            console.print(f"{e} (checkpoint in {out})")
            raise typer.Exit(3) from e
        m = result.manifest
        if result.already_done:
            console.print(f"{out} is already finished with these settings; nothing to do")
            return
        losses = m["losses"]
        console.print(
            f"[green]done[/]: {m['method']} on {m['counts']['train_examples']} examples, {m['steps']} steps, "
            f"held-out loss {losses['initial_val']:.4f} -> {losses['final_val']:.4f}, "
            f"{m['samples_per_second']:.1f} samples/s; {out}/manifest.json"
        )
