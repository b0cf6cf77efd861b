"""Content hashes: the one way vdata fingerprints settings, files and folders.

A fingerprint is the SHA-256 of canonical JSON (sorted keys, no whitespace variance), so the same
settings give the same hash in every stage, and a resumed run can tell that nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys; non-JSON values (paths, dates) as their str()."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def fingerprint(value: Any, length: int | None = None) -> str:
    """SHA-256 hex of `value`'s canonical JSON, cut to `length` characters if given."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    return digest[:length] if length else digest


def sha256_file(path: Path) -> str:
    """SHA-256 hex of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """One SHA-256 over several files: each file's relative name and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(paths):
        name = path.relative_to(root).as_posix() if root is not None else path.name
        h.update(name.encode("utf-8") + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()
