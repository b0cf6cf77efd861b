"""Where vdata keeps things on the user's machine (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_config_dir, user_data_dir

APP = "vdata"


def cache_dir() -> Path:
    """Response caches, converted models, downloaded benchmark files. Override with VDATA_CACHE_DIR."""
    p = Path(os.environ.get("VDATA_CACHE_DIR") or user_cache_dir(APP))
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_dir() -> Path:
    """The embedded server's SQLite database and other durable user data. Override with VDATA_HOME."""
    p = Path(os.environ.get("VDATA_HOME") or user_data_dir(APP))
    p.mkdir(parents=True, exist_ok=True)
    return p


def config_file() -> Path:
    """The user's config file (TOML). Override with VDATA_CONFIG."""
    return Path(os.environ.get("VDATA_CONFIG") or Path(user_config_dir(APP)) / "config.toml")
