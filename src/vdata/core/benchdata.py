"""Locating benchmark files (StereoSet, CrowS-Pairs, word lists, ...) and verifying them.

Search order: an explicit directory (`--data-dir`), env `VDATA_DATA_DIR` (or `data_dir` in the user
config), then the user cache. A file missing everywhere is downloaded from its pinned upstream URL into
the cache (on a connected machine). Every file is checked against the SHA-256 pinned in
`vdata/data/benchmarks.tsv`; a mismatch is an error naming the file. Verified hashes are memoised per
(path, size, mtime) so large files are hashed once per process.
"""

from __future__ import annotations

import csv
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from vdata.core.errors import UserError
from vdata.core.fingerprint import sha256_file
from vdata.core.paths import cache_dir


@dataclass(frozen=True)
class PinnedFile:
    path: str
    bytes: int
    sha256: str
    url: str


@cache
def manifest() -> dict[str, PinnedFile]:
    text = resources.files("vdata.data").joinpath("benchmarks.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader((ln for ln in text.splitlines() if not ln.startswith("#")), delimiter="\t")
    return {r["path"]: PinnedFile(r["path"], int(r["bytes"]), r["sha256"], r["url"]) for r in rows}


_verified: dict[tuple[str, int, int], str] = {}


def _verify(path: Path, pinned: PinnedFile) -> None:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key) or sha256_file(path)
    if digest != pinned.sha256:
        raise UserError(
            f"checksum mismatch for {path}: sha256 {digest[:12]}… but {pinned.path} is pinned to "
            f"{pinned.sha256[:12]}…; the file is corrupt or a different version — delete it so vdata can "
            f"fetch the pinned one from {pinned.url}, or point --data-dir at a correct copy"
        )
    _verified[key] = digest


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    from vdata.core.config import load_user_config

    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir))
    env = os.environ.get("VDATA_DATA_DIR") or load_user_config().data_dir
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir() / "benchmarks")
    return dirs


def locate(relpath: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Return a verified local path for benchmark file `relpath` (e.g. 'stereoset/test.json')."""
    pinned = manifest().get(relpath)
    if pinned is None:
        raise UserError(f"{relpath!r} is not a known benchmark file (see vdata/data/benchmarks.tsv)")
    dirs = search_dirs(data_dir)
    for d in dirs:
        p = d / relpath
        if p.is_file():
            _verify(p, pinned)
            return p
    if download:
        dest = cache_dir() / "benchmarks" / relpath
        try:
            _download(pinned, dest)
        except OSError as e:
            tried = ", ".join(str(d) for d in dirs)
            raise UserError(
                f"benchmark file {relpath} not found (looked in {tried}) and downloading {pinned.url} failed "
                f"({e}); pass --data-dir or set VDATA_DATA_DIR to a folder holding {relpath}"
            ) from e
        return dest
    raise UserError(f"benchmark file {relpath} not found in {', '.join(map(str, dirs))}; pass --data-dir")


def _download(pinned: PinnedFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    h = hashlib.sha256()
    with urllib.request.urlopen(pinned.url, timeout=30) as r, tmp.open("wb") as f:
        for chunk in iter(lambda: r.read(1 << 20), b""):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != pinned.sha256:
        tmp.unlink(missing_ok=True)
        raise OSError(f"downloaded bytes do not match the pinned sha256 of {pinned.path}")
    os.replace(tmp, dest)
