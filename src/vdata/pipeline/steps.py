"""Fingerprinted steps: the unit of `vdata run`.

A step declares its inputs (files), its configuration, its outputs and the `vdata` command that makes
them. Its fingerprint is a SHA-256 over the command, the configuration, the content hashes of its input
files and the vdata version. A step whose fingerprint matches the one recorded after its last successful
run, and whose outputs all exist, is skipped; anything else reruns it. Because each step's inputs are the
previous steps' outputs, a change anywhere reruns exactly what depends on it (as in DataDreamer).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdata import __version__
from vdata.core.benchdata import sha256_file
from vdata.core.errors import UserError


def file_digest(path: Path) -> str:
    """Content hash of a file, or of a directory's files (sorted by relative path)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(x for x in path.rglob("*") if x.is_file()):
            h.update(str(p.relative_to(path)).encode())
            h.update(file_digest(p).encode())
        return h.hexdigest()
    return sha256_file(path)


@dataclass
class Step:
    name: str
    argv: list[str]  # arguments after `vdata`
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        missing = [str(p) for p in self.inputs if not p.exists()]
        if missing:
            raise UserError(f"step {self.name!r}: input(s) missing: {', '.join(missing)}")
        payload = {
            "argv": self.argv,
            "config": self.config,
            "inputs": {str(p): file_digest(p) for p in self.inputs},
            "vdata": __version__,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StepResult:
    name: str
    status: str  # "ran" | "skipped"
    wall_seconds: float
    fingerprint: str
    log: Path


class StepRunner:
    """Runs steps in order inside a work directory, recording state in `steps/<name>.json`."""

    def __init__(self, workdir: Path, echo: Any = print) -> None:
        self.workdir = workdir
        self.state_dir = workdir / "steps"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo

    def _state_path(self, step: Step) -> Path:
        return self.state_dir / f"{step.name}.json"

    def is_done(self, step: Step, fingerprint: str) -> bool:
        sp = self._state_path(step)
        if not sp.exists():
            return False
        state = json.loads(sp.read_text())
        return state.get("fingerprint") == fingerprint and all(p.exists() for p in step.outputs)

    def run(self, step: Step) -> StepResult:
        fp = step.fingerprint()
        log = self.state_dir / f"{step.name}.log"
        if self.is_done(step, fp):
            self.echo(f"[dim]• {step.name}: up to date (fingerprint {fp[:12]}), skipped[/]")
            return StepResult(step.name, "skipped", 0.0, fp, log)
        self._state_path(step).unlink(missing_ok=True)
        self.echo(f"[bold]• {step.name}[/]: vdata {' '.join(step.argv)}")
        t0 = time.perf_counter()
        env = {**os.environ, "VDATA_CONTRIBUTE": "never", "VDATA_DONATION_MESSAGE": "0"}
        with log.open("w") as lf:
            proc = subprocess.run(
                [sys.executable, "-m", "vdata.cli", *step.argv], stdout=lf, stderr=subprocess.STDOUT, env=env
            )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
            raise UserError(
                f"step {step.name!r} failed (exit {proc.returncode}); its log is {log}:\n{tail}\n"
                "Fix the cause and rerun `vdata run`: finished steps are skipped."
            )
        missing = [str(p) for p in step.outputs if not p.exists()]
        if missing:
            raise UserError(
                f"step {step.name!r} finished but did not produce {', '.join(missing)}; see {log}"
            )
        state = {
            "fingerprint": fp,
            "argv": step.argv,
            "config": step.config,
            "wall_seconds": round(wall, 2),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "outputs": {str(p): file_digest(p) for p in step.outputs},
        }
        tmp = self._state_path(step).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self._state_path(step))
        self.echo(f"  done in {wall:.1f}s")
        return StepResult(step.name, "ran", wall, fp, log)
