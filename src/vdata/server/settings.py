"""Server settings: one frozen dataclass, built from `vdata serve` options and environment variables.

The moderator token is never stored here in clear text beyond the process; it comes from the
environment variable VDATA_MODERATOR_TOKEN only, so it never lands in a shell history or a config file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from vdata.core.errors import UserError
from vdata.core.paths import data_dir

SETTINGS_ENV = "VDATA_SERVE_SETTINGS"  # how `vdata serve --workers N` hands settings to worker processes


@dataclass(frozen=True)
class ServerSettings:
    db_url: str
    max_body_bytes: int = 4 * 1024 * 1024
    batch_size: int = 1000
    page_size_max: int = 10_000
    query_time_limit_s: float = 1.0
    query_row_limit: int = 10_000
    # PUT rate limit per client address: a token bucket refilled at `put_rate` requests/s, holding `put_burst`.
    put_rate: float = 5.0
    put_burst: int = 20
    moderator_token: str | None = None
    donate_url: str | None = None
    donate_message: str = "vdata and its public dataset are run by volunteers. If the data helped you, please consider a donation."
    access_log: bool = True

    def to_env(self) -> str:
        # The token is deliberately left out: workers read it from their own environment.
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if k != "moderator_token"})

    @classmethod
    def from_env(cls) -> ServerSettings:
        raw = os.environ.get(SETTINGS_ENV)
        base = cls(**json.loads(raw)) if raw else cls(db_url=default_db_url())
        return dataclasses.replace(base, moderator_token=os.environ.get("VDATA_MODERATOR_TOKEN") or None)


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'server.sqlite3'}"


def normalise_db_url(url: str | None) -> str:
    """Accept sqlite:///path, postgresql://..., postgres://...; use the psycopg 3 driver for PostgreSQL."""
    if not url:
        return default_db_url()
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return url
    raise UserError(
        f"unsupported --db {url!r}; use sqlite:///PATH (the default is a file in the data dir) "
        "or postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
    )


def settings_from_env_and_options(db: str | None, **overrides: object) -> ServerSettings:
    values: dict[str, object] = {"db_url": normalise_db_url(db)}
    donate_url = os.environ.get("VDATA_DONATE_URL")
    if donate_url:
        values["donate_url"] = donate_url
    donate_message = os.environ.get("VDATA_DONATE_MESSAGE")
    if donate_message:
        values["donate_message"] = donate_message
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["moderator_token"] = os.environ.get("VDATA_MODERATOR_TOKEN") or None
    return ServerSettings(**values)  # type: ignore[arg-type]
