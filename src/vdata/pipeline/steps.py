"""Fingerprinted steps: the unit of `vdata run`.

A step declares its inputs (files), its settings, its outputs and the function that makes them (a stage's
library entry point, run in this process). Its fingerprint is a SHA-256 over the step's name, its settings,
the content hashes of its input files and the vdata version. A step whose fingerprint matches the one
recorded after its last successful run, and whose outputs all exist, is skipped; anything else reruns it.
Because each step's inputs are the previous steps' outputs, a change anywhere reruns exactly what depends
on it (as in DataDreamer).
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdata import __version__
from vdata.core.errors import UserError
from vdata.core.fingerprint import fingerprint, sha256_file
from vdata.core.io import write_json_atomic


def file_digest(path: Path) -> str:
    """Content hash of a file, or of a directory's files (sorted by relative path)."""
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(x for x in path.rglob("*") if x.is_file()):
            h.update(str(p.relative_to(path)).encode())
            h.update(file_digest(p).encode())
        return h.hexdigest()
    return sha256_file(path)


@dataclass
class Step:
    name: str
    # Makes the outputs; returns a one-line summary for the log. Runs in this process.
    action: Callable[[], str]
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # JSON values: what the step is asked to do

    def fingerprint(self) -> str:
        missing = [str(p) for p in self.inputs if not p.exists()]
        if missing:
            raise UserError(f"step {self.name!r}: input(s) missing: {', '.join(missing)}")
        return fingerprint(
            {
                "step": self.name,
                "settings": self.settings,
                "inputs": {str(p): file_digest(p) for p in self.inputs},
                "vdata": __version__,
            }
        )


@dataclass
class StepResult:
    name: str
    status: str  # "ran" | "skipped"
    wall_seconds: float
    fingerprint: str
    log: Path


class StepRunner:
    """Runs steps in order inside a work directory, recording state in `steps/<name>.json`."""

    def __init__(self, workdir: Path, echo: Callable[[str], None] = print) -> None:
        self.workdir = workdir
        self.state_dir = workdir / "steps"
        self.echo = echo

    def _state_path(self, step: Step) -> Path:
        return self.state_dir / f"{step.name}.json"

    def is_done(self, step: Step, fingerprint: str) -> bool:
        sp = self._state_path(step)
        if not sp.exists():
            return False
        state = json.loads(sp.read_text())
        return state.get("fingerprint") == fingerprint and all(p.exists() for p in step.outputs)

    def status(self, step: Step) -> str:
        """'up to date' or 'to run' (a step whose inputs an earlier step makes is 'to run')."""
        try:
            return "up to date" if self.is_done(step, step.fingerprint()) else "to run"
        except UserError:
            return "to run"

    def run(self, step: Step) -> StepResult:
        fp = step.fingerprint()
        log = self.state_dir / f"{step.name}.log"
        if self.is_done(step, fp):
            self.echo(f"[dim]• {step.name}: up to date (fingerprint {fp[:12]}), skipped[/]")
            return StepResult(step.name, "skipped", 0.0, fp, log)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._state_path(step).unlink(missing_ok=True)
        self.echo(f"[bold]• {step.name}[/]")
        t0 = time.perf_counter()
        try:
            summary = step.action()
        except Exception as e:
            log.write_text(traceback.format_exc(), encoding="utf-8")
            reason = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e} (traceback in {log})"
            raise UserError(
                f"step {step.name!r} failed: {reason}\n"
                "Fix the cause and rerun the same command: finished steps are skipped."
            ) from e
        wall = time.perf_counter() - t0
        log.write_text(f"{summary}\n", encoding="utf-8")
        missing = [str(p) for p in step.outputs if not p.exists()]
        if missing:
            raise UserError(f"step {step.name!r} finished but did not produce {', '.join(missing)}")
        state = {
            "fingerprint": fp,
            "settings": step.settings,
            "wall_seconds": round(wall, 2),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "outputs": {str(p): file_digest(p) for p in step.outputs},
        }
        write_json_atomic(self._state_path(step), state)
        self.echo(f"  {summary} ({wall:.1f}s)")
        return StepResult(step.name, "ran", wall, fp, log)
