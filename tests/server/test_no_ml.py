"""The server runs without the ML stack: importing and building it loads no model code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "peft", "sentence_transformers", "numpy", "vdata.lm")
STAGES = ("vdata.generate", "vdata.audit", "vdata.debias", "vdata.evaluate")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules or any(m.startswith(name + ".") for m in modules)]


def test_server_app_imports_no_ml_and_no_other_stage(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    modules = _modules_after(
        "from vdata.server.app import create_app\n"
        "from vdata.server.settings import ServerSettings\n"
        f"app = create_app(ServerSettings(db_url={db_url!r}))\n"
        "app.openapi()\n"
    )
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, STAGES) == []  # a stage never imports another stage


def test_vdata_serve_start_up_imports_no_ml(tmp_path: Path) -> None:
    # What `vdata serve` imports before it listens: the top-level CLI, then the uvicorn server and app.
    db_url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    modules = _modules_after(
        "import vdata.cli\n"
        "from vdata.server.serve import make_server\n"
        "from vdata.server.settings import ServerSettings\n"
        f"make_server(ServerSettings(db_url={db_url!r}), '127.0.0.1', 0)\n"
    )
    assert _loaded(modules, HEAVY) == []
