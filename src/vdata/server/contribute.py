"""The question `vdata gen` asks when it finishes: contribute the new records to the public server?

The top-level CLI calls `after_generation(out_path, quiet=...)` once `vdata gen` has written its output.

Asked only in an interactive terminal (stdin and stdout are TTYs), only when a server is configured,
never with --quiet, and never when the user said `contribute = never` (config) or VDATA_CONTRIBUTE=never.
Afterwards a short donation message is shown once per user (a marker file in the data dir remembers
it), unless `donation_message = false` or VDATA_DONATION_MESSAGE=0. An unreachable server is reported
clearly; the local output file is never touched.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from rich.console import Console
from rich.prompt import IntPrompt, Prompt

from vdata.core.config import UserConfig, load_user_config
from vdata.core.errors import UserError
from vdata.core.io import read_records
from vdata.core.paths import data_dir
from vdata.core.records import Record

DONATION_MARKER = "donation-message-shown"
DEFAULT_SAMPLE = 50
FALLBACK_DONATION_MESSAGE = (
    "vdata is free software and its public dataset is run by volunteers. "
    "If it helped you, please consider supporting the project."
)

# (question, choices, default) -> answer; injectable so the flow is testable without a terminal.
AskChoice = Callable[[str, list[str], str], str]
AskInt = Callable[[str, int], int]


def _is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _rich_choice(question: str, choices: list[str], default: str) -> str:
    return Prompt.ask(question, choices=choices, default=default)


def _rich_int(question: str, default: int) -> int:
    return IntPrompt.ask(question, default=default)


def after_generation(out_path: Path, *, quiet: bool, console: Console | None = None) -> str:
    """Offer to contribute the records `vdata gen` just wrote to `out_path` to the configured server.

    The top-level CLI calls this after `vdata gen` (no stage calls it). Returns what happened: skipped
    (quiet, not a terminal, no server configured, `contribute = never`, or no records), declined,
    pushed, unreachable or failed. The records are read from `out_path` only when the offer is made.
    """
    if quiet or not _is_interactive():
        return "skipped"
    try:
        config = load_user_config()
    except UserError:
        return "skipped"  # a broken config file is reported by the commands that need it, not here
    if config.contribute == "never" or not config.server:
        return "skipped"  # decided before reading the output, which may be large
    records = read_records(out_path)
    if not records:
        return "skipped"
    return offer_contribution(out_path, records, config, console or Console(), _rich_choice, _rich_int)


def offer_contribution(
    out_path: Path,
    records: Sequence[Record],
    config: UserConfig,
    console: Console,
    ask_choice: AskChoice,
    ask_int: AskInt,
) -> str:
    """The interactive flow itself. Returns what happened: skipped, declined, pushed, unreachable, failed."""
    if config.contribute == "never" or not config.server:
        return "skipped"
    from vdata.server.client import ServerUnreachable, push_records, resolve_server

    try:
        server = resolve_server(config.server)
    except UserError as e:
        console.print(f"[yellow]not offering to contribute:[/] {e}")
        return "failed"
    n = len(records)
    answer = ask_choice(
        f"Contribute these {n} records to the public vdata dataset at {server}? "
        "(all, none, or a random sample; moderators review them first)",
        ["all", "none", "sample"],
        "none",
    )
    outcome = "declined"
    if answer != "none":
        chosen = list(records)
        if answer == "sample":
            size = max(1, min(n, ask_int("How many records?", min(DEFAULT_SAMPLE, n))))
            chosen = random.Random().sample(chosen, size)
        try:
            report = push_records(chosen, server, sleep=lambda s: None)
        except ServerUnreachable as e:
            console.print(
                f"[yellow]could not contribute:[/] {e}\nYour records are safe in {out_path}; "
                f"send them later with: vdata push {out_path} --server {server}"
            )
            outcome = "unreachable"
        except UserError as e:
            console.print(f"[yellow]could not contribute:[/] {e}\nYour records are safe in {out_path}.")
            outcome = "failed"
        else:
            console.print(
                f"Thank you: {len(report.accepted)} sent for review, {len(report.duplicates)} already known"
                + (f", {len(report.rejected)} rejected" if report.rejected else "")
                + "."
            )
            outcome = "pushed"
    _donation_message_once(server, config, console)
    return outcome


def _donation_message_once(server: str, config: UserConfig, console: Console) -> None:
    if not config.donation_message:
        return
    marker = data_dir() / DONATION_MARKER
    if marker.exists():
        return
    message, url = FALLBACK_DONATION_MESSAGE, None
    try:
        body = httpx.get(f"{server}/v1/donate", timeout=3.0).json()
        message, url = body.get("message") or message, body.get("url")
    except (httpx.HTTPError, ValueError, AttributeError):
        pass  # the server's own message is nicer, but the fallback is fine
    console.print(f"\n[dim]{message}{' ' + url if url else ''}\n(shown once)[/]")
    marker.write_text("shown\n", encoding="utf-8")


def marker_path() -> Path:
    return data_dir() / DONATION_MARKER
