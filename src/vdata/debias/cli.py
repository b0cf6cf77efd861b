"""`vdata debias MODEL DATA... --out DIR`: maps the flags onto `DebiasSettings` and runs `run_debias`.

Every option defaults to None ("not given"), so that the defaults, bounds, choices and help text live only
in `vdata.debias.settings`; the help shows each setting's default from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vdata.core.settings import validate_settings
from vdata.debias.settings import DebiasSettings

SOURCE = "vdata debias"


def _option(name: str) -> Any:
    """The `--name` flag of setting `name`: help text and shown default from its Field."""
    field = DebiasSettings.model_fields[name]
    default = field.get_default(call_default_factory=True)
    shown = str(default) if default not in (None, [], False) else False
    return typer.Option(None, "--" + name.replace("_", "-"), help=field.description, show_default=shown)


def _help(name: str) -> str:
    return DebiasSettings.model_fields[name].description or ""


def register(app: typer.Typer) -> None:
    @app.command(
        "debias",
        help="Debias MODEL on DATA (vdata records or Han et al. JSON) with LoRA (default), a Pfeiffer bottleneck "
        "adapter, or full fine-tuning. Writes the adapter and manifest.json to DIR; rerunning an interrupted "
        "command resumes it.",
    )
    def debias_cmd(
        model: str = typer.Argument(..., help=_help("model")),
        data: list[Path] = typer.Argument(..., help=_help("data")),
        out: Path = typer.Option(..., "--out", help=_help("out")),
        method: str | None = _option("method"),
        objective: str | None = _option("objective"),
        cda: str | None = _option("cda"),
        cda_mode: str | None = _option("cda_mode"),
        word_lists: Path | None = _option("word_lists"),
        mix_corpus: Path | None = _option("mix_corpus"),
        bias_ratio: float | None = _option("bias_ratio"),
        mitigation: str | None = _option("mitigation"),
        kl_coef: float | None = _option("kl_coef"),
        synthetic_weight: float | None = _option("synthetic_weight"),
        epochs: int | None = _option("epochs"),
        batch_size: int | None = _option("batch_size"),
        grad_accum: int | None = _option("grad_accum"),
        lr: float | None = _option("lr"),
        warmup_ratio: float | None = _option("warmup_ratio"),
        max_length: int | None = _option("max_length"),
        val_fraction: float | None = _option("val_fraction"),
        patience: int | None = _option("patience"),
        eval_every: int | None = _option("eval_every"),
        save_every: int | None = _option("save_every"),
        lora_r: int | None = _option("lora_r"),
        lora_alpha: int | None = _option("lora_alpha"),
        lora_dropout: float | None = _option("lora_dropout"),
        lora_targets: str | None = _option("lora_targets"),
        reduction_factor: int | None = _option("reduction_factor"),
        merge: bool | None = _option("merge"),
        seed: int | None = _option("seed"),
        limit: int | None = _option("limit"),
        data_dir: Path | None = _option("data_dir"),
        stop_after_steps: int | None = _option("stop_after_steps"),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from rich.console import Console

        from vdata.core.progress import progress_factory
        from vdata.debias.loop import StopRequested
        from vdata.debias.train import run_debias

        given = {k: v for k, v in locals().items() if k in DebiasSettings.model_fields and v is not None}
        values = {
            k: [str(p) for p in v] if k == "data" else str(v) if isinstance(v, Path) else v
            for k, v in given.items()
        }
        settings = validate_settings(
            DebiasSettings, values, source=SOURCE, prefix="--", hint="See `vdata debias --help`."
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
