"""User configuration: `config.toml` in the user config dir, overridable by environment variables.

Keys (all optional):
    server = "https://vdata.example.org"   # default for push/pull and the post-gen contribution prompt
    contribute = "ask" | "never"           # whether `vdata gen` offers to contribute its records
    donation_message = true | false
    data_dir = "/path/to/benchmarks"       # benchmark files (else VDATA_DATA_DIR, else the cache)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from vdata.core.errors import UserError
from vdata.core.paths import config_file


@dataclass(frozen=True)
class UserConfig:
    server: str | None = None
    contribute: str = "ask"
    donation_message: bool = True
    data_dir: str | None = None


def _truthy(v: str) -> bool:
    return v.strip().lower() not in {"0", "false", "no", "off", ""}


def load_user_config(path: Path | None = None) -> UserConfig:
    path = path or config_file()
    raw: dict = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"config file {path} is not valid TOML: {e}; fix or delete it") from e
    unknown = set(raw) - {"server", "contribute", "donation_message", "data_dir"}
    if unknown:
        raise UserError(
            f"config file {path}: unknown key(s) {sorted(unknown)}; "
            "allowed: server, contribute, donation_message, data_dir"
        )
    contribute = os.environ.get("VDATA_CONTRIBUTE", raw.get("contribute", "ask"))
    if contribute not in {"ask", "never"}:
        raise UserError(
            f"contribute must be 'ask' or 'never', got {contribute!r} (config {path} or VDATA_CONTRIBUTE)"
        )
    donation = raw.get("donation_message", True)
    if "VDATA_DONATION_MESSAGE" in os.environ:
        donation = _truthy(os.environ["VDATA_DONATION_MESSAGE"])
    return UserConfig(
        server=os.environ.get("VDATA_SERVER") or raw.get("server"),
        contribute=contribute,
        donation_message=bool(donation),
        data_dir=os.environ.get("VDATA_DATA_DIR") or raw.get("data_dir"),
    )
