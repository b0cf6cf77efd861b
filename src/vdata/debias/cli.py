"""`vdata debias MODEL DATA... --out DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from vdata.core.errors import UserError


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    @app.command(
        "debias",
        help="Debias MODEL on DATA (vdata records or Han et al. JSON) with LoRA (default), a Pfeiffer bottleneck "
        "adapter, or full fine-tuning. Writes the adapter and manifest.json to DIR; rerunning an interrupted "
        "command resumes it.",
    )
    def debias_cmd(
        model: str = typer.Argument(
            ..., help="Base model: smollm2-135m, a HF id/path (causal or masked LM)."
        ),
        data: list[Path] = typer.Argument(..., help="Training data files."),
        out: Path = typer.Option(..., "--out", help="Output directory."),
        method: str = typer.Option("lora", "--method", help="lora | bottleneck | full"),
        objective: str = typer.Option(
            "sentence",
            "--objective",
            help="sentence (LM loss on the sentence) | attribute (attribute word only)",
        ),
        cda: str = typer.Option("", "--cda", help="Two-sided CDA categories, e.g. gender,race,religion."),
        cda_mode: str = typer.Option(
            "cased", "--cda-mode", help="cased | bias-bench (case-sensitive matching)"
        ),
        word_lists: Path | None = typer.Option(None, "--word-lists", help="Own CDA word lists (JSON)."),
        mix_corpus: Path | None = typer.Option(None, "--mix-corpus", help="Original text to mix in."),
        bias_ratio: float | None = typer.Option(None, "--bias-ratio", help="Synthetic share R in [0, 1]."),
        mitigation: str = typer.Option(
            "", "--mitigation", help="Bias-inheritance mitigations: token,mask,loss"
        ),
        kl_coef: float = typer.Option(1.0, "--kl-coef", help="`loss` mitigation: weight of the KL term."),
        synthetic_weight: float = typer.Option(
            1.0, "--synthetic-weight", help="`loss` mitigation: weight of synthetic tokens' cross-entropy."
        ),
        epochs: int = typer.Option(3, "--epochs"),
        batch_size: int = typer.Option(16, "--batch-size"),
        grad_accum: int = typer.Option(1, "--grad-accum"),
        lr: float | None = typer.Option(None, "--lr", help="Default: 2e-4 LoRA, 1e-4 bottleneck, 2e-5 full."),
        warmup_ratio: float = typer.Option(0.06, "--warmup-ratio"),
        max_length: int = typer.Option(64, "--max-length", help="Tokens per example (longer ones are cut)."),
        val_fraction: float = typer.Option(0.1, "--val-fraction", help="Held-out share for early stopping."),
        patience: int = typer.Option(
            2, "--patience", help="Evaluations without improvement before stopping."
        ),
        eval_every: int = typer.Option(0, "--eval-every", help="Validate every N steps (0: once per epoch)."),
        save_every: int = typer.Option(50, "--save-every", help="Checkpoint every N optimizer steps."),
        lora_r: int = typer.Option(8, "--lora-r"),
        lora_alpha: int = typer.Option(16, "--lora-alpha"),
        lora_dropout: float = typer.Option(0.05, "--lora-dropout"),
        lora_targets: str = typer.Option(
            "all-linear", "--lora-targets", help="all-linear or module names, comma-separated."
        ),
        reduction_factor: int = typer.Option(
            16, "--reduction-factor", help="Bottleneck adapter reduction factor."
        ),
        merge: bool = typer.Option(False, "--merge", help="Also save the LoRA-merged model in DIR/merged."),
        seed: int = typer.Option(0, "--seed"),
        limit: int | None = typer.Option(None, "--limit", help="Use only the first N synthetic examples."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Benchmark data dir (for word lists)."),
        stop_after_steps: int | None = typer.Option(
            None,
            "--stop-after-steps",
            help="Time-boxing: stop after N steps, leaving a resumable checkpoint.",
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        from rich.console import Console

        from vdata.debias.train import DebiasSettings, StopRequested, run_debias

        settings = DebiasSettings(
            model=model,
            data=[str(p) for p in data],
            out=str(out),
            method=method,
            objective=objective,
            cda=_csv(cda),
            cda_mode=cda_mode,
            word_lists=str(word_lists) if word_lists else None,
            mix_corpus=str(mix_corpus) if mix_corpus else None,
            bias_ratio=bias_ratio,
            mitigation=_csv(mitigation),
            kl_coef=kl_coef,
            synthetic_weight=synthetic_weight,
            epochs=epochs,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lr=lr,
            warmup_ratio=warmup_ratio,
            max_length=max_length,
            val_fraction=val_fraction,
            patience=patience,
            eval_every=eval_every,
            save_every=save_every,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            lora_targets=lora_targets,
            reduction_factor=reduction_factor,
            merge=merge,
            seed=seed,
            limit=limit,
            data_dir=str(data_dir) if data_dir else None,
            quiet=quiet,
            stop_after_steps=stop_after_steps,
        )
        if cda_mode not in ("cased", "bias-bench"):
            raise UserError(f"--cda-mode must be cased or bias-bench; got {cda_mode!r}")
        console = Console(stderr=True, quiet=quiet)
        try:
            result = run_debias(settings, console=console)
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
