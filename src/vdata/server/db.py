"""Storage: the table of contributed records, the public views, engines and migrations.

Contributions live in `record_store` (never exposed directly). The public surface is two views created
by the migrations: `records` (approved records, public columns only) and `stats` (counts). The server's
own statements are built with SQLAlchemy Core and bound parameters; no user input is formatted into SQL.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)

metadata = MetaData()

record_store = Table(
    "record_store",
    metadata,
    # Insertion order; the keyset for pagination.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(16), nullable=False, unique=True),
    # SHA-256 of the normalised text, recomputed by the server (the 16-hex id is its prefix).
    Column("content_sha256", String(64), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("target", Text, nullable=False, default=""),
    Column("attribute", Text, nullable=False, default=""),
    Column("category", String(200), nullable=False, default=""),
    Column("strategy", String(40), nullable=False, default=""),
    Column("attributes", Text, nullable=True),
    Column("provider", String(200), nullable=False, default=""),
    Column("model", String(300), nullable=False, default=""),
    Column("prompt_sha256", String(64), nullable=False, default=""),
    Column("params", Text, nullable=False, default="{}"),
    Column("created_at", String(40), nullable=False),
    Column("vdata_version", String(40), nullable=False, default=""),
    Column("contributor", String(100), nullable=False, default=""),
    Column("status", String(10), nullable=False, default="pending"),
    Column("submitted_at", String(40), nullable=False),
    Column("moderated_at", String(40), nullable=True),
    Index("ix_record_store_status_seq", "status", "seq"),
    Index("ix_record_store_status_category_seq", "status", "category", "seq"),
)

PUBLIC_VIEWS: frozenset[str] = frozenset({"records", "stats"})
STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets readers (including /v1/query's read-only connections) run beside the writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(db_url: str) -> Engine:
    if db_url.startswith("sqlite"):
        path = db_url.split("sqlite:///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            db_url, connect_args={"check_same_thread": False, "timeout": 5}, pool_size=8, max_overflow=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a round trip per checkout on the hot path): connections are recycled instead, and
    # SQLAlchemy invalidates the whole pool when a query sees a dropped connection.
    return create_engine(db_url, pool_size=10, max_overflow=10, pool_recycle=1800)


def alembic_config(db_url: str):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (run at every start; a no-op when current)."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    # PostgreSQL: this month's and the next months' partitions exist before rows arrive (partitions.py).
    from vdata.server.partitions import ensure_months_ahead

    ensure_months_ahead(engine)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def may_take_role(engine: Engine, role: str) -> bool:
    """PostgreSQL: whether `role` exists and the server's user is a member of it (may SET ROLE to it)."""
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = :n"
                ),
                {"n": role},
            ).scalar()
        )
