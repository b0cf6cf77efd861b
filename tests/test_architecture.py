"""The layer contract (pyproject `[tool.importlinter]`) holds, and no module grows into a grab-bag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 600


def test_import_layers_contract_is_kept() -> None:
    # lint-imports reads every import statement, including those inside functions.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_oversized() -> None:
    oversized = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "src" / "vdata").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not oversized, f"split these modules by concern: {oversized}"
