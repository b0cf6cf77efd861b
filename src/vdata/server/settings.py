"""Server settings: one frozen, typed model, from `vdata serve` options and environment variables.

The moderator token comes only from the environment (VDATA_MODERATOR_TOKEN), so it never lands in a
shell history or a config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from vdata.core.errors import UserError
from vdata.core.paths import data_dir
from vdata.core.settings import StageSettings, validate_settings

# The strategy names a contributed record may carry. `vdata serve` passes the generate stage's registry
# (the server itself never imports a stage); this default is the built-in strategies.
DEFAULT_STRATEGIES: tuple[str, ...] = ("targeted", "general", "attributed", "simple", "loss_guided")


# The --db option of every server command (serve, snapshot, moderators, costs): one text for all of them.
DB_HELP = (
    "Database URL: postgresql://USER:PASS@HOST/DB or sqlite:///PATH (default: env VDATA_DB, else SQLite "
    "in the data dir)."
)


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'server.sqlite3'}"


def normalise_db_url(url: str | None) -> str:
    """Accept sqlite:///PATH and postgresql://... (psycopg 3 driver); the default is SQLite in the data dir."""
    if not url:
        return default_db_url()
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return url
    raise UserError(
        f"unsupported --db {url!r}; use sqlite:///PATH (default: a file in the data dir) "
        "or postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
    )


# `vdata serve --auto-reject RULES`: each rule rejects the records of a contribution batch that carry
# one kind of gate flag (flags.FLAG_KINDS), with the reason written to the moderation log.
AUTO_REJECT_RULES: dict[str, str] = {
    "duplicates": "duplicate",
    "near-duplicates": "near-duplicate",
    "benchmark-overlap": "benchmark",
    "refusals": "refusal",
    "malformed": "malformed",
    "other-language": "language",
}
AutoRejectRule = Literal[
    "duplicates", "near-duplicates", "benchmark-overlap", "refusals", "malformed", "other-language"
]

# `vdata serve --benchmark-every`: the command run on the latest snapshot. {python} is this
# interpreter, {snapshot} the snapshot folder, {out} a fresh folder that receives benchmark.json.
DEFAULT_BENCHMARK_COMMAND: tuple[str, ...] = (
    "{python}",
    "-m",
    "vdata",
    "benchmark-dataset",
    "{snapshot}",
    "--out",
    "{out}",
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds in "7d", "12h", "30m", "45s", "2w" or a plain number of seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"duration {text!r} is not understood; write e.g. 7d, 12h, 30m or 45s")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_auto_reject(text: str) -> tuple[str, ...]:
    """The rules of `--auto-reject duplicates,refusals` (an empty text: none)."""
    rules = tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
    unknown = [r for r in rules if r not in AUTO_REJECT_RULES]
    if unknown:
        raise UserError(
            f"--auto-reject: unknown rule {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(AUTO_REJECT_RULES)}"
        )
    return rules


# Limits an operator can set in the environment (options of `vdata serve` take precedence).
ENV_LIMITS: dict[str, tuple[str, type]] = {
    "batch_size": ("VDATA_BATCH_SIZE", int),
    "max_body_bytes": ("VDATA_MAX_BODY_BYTES", int),
    "max_page": ("VDATA_MAX_PAGE", int),
    "query_timeout_s": ("VDATA_QUERY_TIMEOUT", float),
    "query_row_limit": ("VDATA_QUERY_ROW_LIMIT", int),
    "put_rate": ("VDATA_PUT_RATE", float),
    "put_burst": ("VDATA_PUT_BURST", int),
    "count_cache_s": ("VDATA_COUNT_CACHE_S", float),
    "replica_max_lag_s": ("VDATA_REPLICA_MAX_LAG", float),
}


class ServerSettings(StageSettings):
    model_config = ConfigDict(frozen=True)

    db_url: str
    moderator_token: str | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1)
    batch_size: int = Field(1000, ge=1)
    max_page: int = Field(10_000, ge=1)
    query_timeout_s: float = Field(1.0, gt=0)
    query_row_limit: int = Field(10_000, ge=1)
    # PUT rate limit per client address: token bucket refilled at `put_rate` requests/s, holding `put_burst`.
    put_rate: float = Field(5.0, gt=0)
    put_burst: int = Field(20, ge=1)
    readonly_role: str = "vdata_readonly"
    # Folder of `vdata snapshot` output served at /v1/snapshots (None: no snapshots served).
    snapshots_dir: Path | None = None
    donate_url: str | None = None
    # `vdata audit`'s report.json of the public dataset: its figures are shown on the home page.
    audit_report: Path | None = None
    # Seconds the pages reuse a count (facets, home page figures) before recomputing it in the background.
    count_cache_s: float = Field(30.0, ge=0)
    donate_message: str = "vdata and its public dataset are run by volunteers. If the data helped you, please consider a donation."
    strategies: tuple[Annotated[str, Field(min_length=1, max_length=40)], ...] = Field(
        DEFAULT_STRATEGIES, min_length=1
    )
    # The contribution gate: a report on every PUT batch, made after the response by a worker process.
    gate: bool = True
    auto_reject: tuple[AutoRejectRule, ...] = ()
    # Seconds the gate reuses its profile of the public dataset (groups, pairings) before bringing it up
    # to date (from the records stored and the moderation log since: gate.update_public_profile).
    gate_refresh_s: float = Field(600.0, ge=0)
    # Benchmark the latest snapshot this often (seconds; None: never) with `benchmark_command`.
    benchmark_every_s: float | None = Field(None, gt=0)
    benchmark_command: tuple[str, ...] = Field(DEFAULT_BENCHMARK_COMMAND, min_length=1)
    # Where scheduled runs write their output (default: benchmark-runs in the data dir).
    benchmark_runs_dir: Path | None = None
    # A PostgreSQL streaming replica for public reads (see replica.py); writes always go to db_url.
    read_db_url: str | None = None
    # Reads fall back to the primary while the replica is missing writes older than this.
    replica_max_lag_s: float = Field(10.0, gt=0)
    replica_check_s: float = Field(1.0, gt=0)
    # `vdata serve --snapshot-every`: seconds between background snapshots into snapshots_dir.
    snapshot_every_s: float | None = Field(None, gt=0)
    # Records approved this recently wait for the next background snapshot (as `vdata snapshot --settle`).
    snapshot_settle_s: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _read_db_needs_postgres(self) -> ServerSettings:
        if self.read_db_url is not None and (self.is_sqlite or not self.read_db_url.startswith("postgresql")):
            raise ValueError(
                "read_db_url (--read-db) is a PostgreSQL streaming replica of a PostgreSQL --db; "
                "SQLite has no replicas"
            )
        if self.snapshot_every_s is not None and self.snapshots_dir is None:
            raise ValueError("snapshot_every_s (--snapshot-every) needs snapshots_dir (--snapshots DIR)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @classmethod
    def from_env(cls, db: str | None = None, **overrides: Any) -> ServerSettings:
        """Settings from options (`overrides`; None means "not given") over environment variables."""
        values: dict[str, Any] = {"db_url": normalise_db_url(db or os.environ.get("VDATA_DB"))}
        for key, (name, kind) in ENV_LIMITS.items():
            if os.environ.get(name):
                try:
                    values[key] = kind(os.environ[name])
                except ValueError as e:
                    raise UserError(f"{name} must be a number, got {os.environ[name]!r}") from e
        if os.environ.get("VDATA_DONATE_URL"):
            values["donate_url"] = os.environ["VDATA_DONATE_URL"]
        if os.environ.get("VDATA_AUDIT_REPORT"):
            values["audit_report"] = Path(os.environ["VDATA_AUDIT_REPORT"])
        if os.environ.get("VDATA_DONATE_MESSAGE"):
            values["donate_message"] = os.environ["VDATA_DONATE_MESSAGE"]
        values["moderator_token"] = os.environ.get("VDATA_MODERATOR_TOKEN") or None
        read_db = overrides.pop("read_db_url", None) or os.environ.get("VDATA_READ_DB")
        if read_db:
            values["read_db_url"] = normalise_db_url(read_db)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validate_settings(
            cls,
            values,
            source="server settings",
            hint="Check the options of vdata serve and VDATA_* variables.",
        )
