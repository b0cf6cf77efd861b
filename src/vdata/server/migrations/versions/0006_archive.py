"""Archive: months of records can leave the hot table once a verified snapshot holds them (archive.py).

Both databases get `archived_periods` (one row per archived month) and `archived_records` (per archived
record what the snapshot does not carry: seq, content hash, status and times; the whole row, as JSON, for
a record the snapshot does not publish, such as a rejected one), so a restore rebuilds every column.

PostgreSQL: `record_store` becomes partitioned by month of `submitted_at` (RANGE, "C" collation, plus a
DEFAULT partition), so a month leaves by DETACH + DROP instead of deleting row by row. The submission
time, not the approval time: it is set once and never empty, so a moderation never moves a row between
partitions and a pending record has a month too. A partitioned table's unique constraints must contain
the partition key, so global uniqueness of `id` and `content_sha256` moves to `record_keys` (not
partitioned), which also keeps the keys of archived records, so a re-upload of an archived text is still
refused as a duplicate. A PUT claims its keys itself, in the statement that inserts the rows
(store._pg_insert_claimed: one set-based insert into `record_keys`, then only the claimed rows); every other
insert (COPY, restore, an operator's INSERT) has its keys claimed by a row trigger, which the PUT's
statement skips (a per-row trigger cost a PUT a fifth of its throughput; docs/server.md, Archive). The
keys are in the "C" collation: they are hex digests, and byte comparison is the cheapest index order.
The rows are copied into the new table
once (heavy at volume; see docs/deploy.md), its indexes, triggers and the `records` view are rebuilt from
the old table's own definitions.

SQLite (no partitions): the archived month's rows are deleted in one transaction; a trigger refuses
(skips, as a duplicate) an insert whose id or content hash is archived.

Revision ID: 0006_archive
Revises: 0005_scale
Create Date: 2026-11-30
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006_archive"
down_revision = "0005_scale"
branch_labels = None
depends_on = None

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
UNIQUE_CONSTRAINTS = {
    "record_store_pkey": "PRIMARY KEY (seq)",
    "record_store_id_key": "UNIQUE (id)",
    "record_store_content_sha256_key": "UNIQUE (content_sha256)",
}

SQLITE_DEDUP = (
    "CREATE TRIGGER archived_dedup BEFORE INSERT ON record_store WHEN EXISTS (SELECT 1 FROM archived_records "
    "a WHERE a.id = new.id OR a.content_sha256 = new.content_sha256) BEGIN SELECT RAISE(IGNORE); END"
)

# The key of a new row; a row whose key is taken is skipped (RETURN NULL), which INSERT ... ON CONFLICT DO
# NOTHING RETURNING id reports as a duplicate. An UPDATE of submitted_at moves a row to another partition
# (a delete plus an insert that fires this trigger): the same seq owns the key, so the row passes.
# Skipped (WHEN) in a transaction whose PUT statement claimed its rows' keys itself: KEYS_CLAIMED.
POSTGRES_KEY_INSERT = """
CREATE FUNCTION vdata_record_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO record_keys (id, content_sha256, seq) VALUES (NEW.id, NEW.content_sha256, NEW.seq)
  ON CONFLICT DO NOTHING;
  IF FOUND OR EXISTS (SELECT 1 FROM record_keys k WHERE k.id = NEW.id
                      AND k.content_sha256 = NEW.content_sha256 AND k.seq = NEW.seq) THEN
    RETURN NEW;
  END IF;
  RETURN NULL;
END $$
"""
# A deleted row frees its key (as the unique constraints did), unless the row only moved partitions.
# DETACH fires no trigger: archived rows keep their keys.
POSTGRES_KEY_DELETE = """
CREATE FUNCTION vdata_record_key_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM record_store r WHERE r.id = OLD.id) THEN
    DELETE FROM record_keys WHERE id = OLD.id AND seq = OLD.seq;
  END IF;
  RETURN NULL;
END $$
"""
# Transaction-local setting that store._pg_insert_claimed sets in the statement claiming its keys, before
# any of its rows reach record_store (the rows' seq comes out of the claim).
KEYS_CLAIMED = "vdata.keys_claimed"
POSTGRES_KEY_TRIGGERS = [
    "CREATE TRIGGER vdata_record_key BEFORE INSERT ON record_store FOR EACH ROW "
    f"WHEN (current_setting('{KEYS_CLAIMED}', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION vdata_record_key()",
    "CREATE TRIGGER vdata_record_key_gone AFTER DELETE ON record_store FOR EACH ROW "
    "EXECUTE FUNCTION vdata_record_key_gone()",
]
POSTGRES_GRANT = """
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'vdata_readonly') THEN
    GRANT SELECT ON records TO vdata_readonly;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'vdata: cannot grant the read-only role vdata_readonly the view records (%)', SQLERRM;
END
$$;
"""


def partition_name(month: str) -> str:
    return f"record_store_p{month.replace('-', '_')}"


def month_bounds(month: str) -> tuple[str, str]:
    year, number = int(month[:4]), int(month[5:7])
    following = f"{year + 1:04d}-01" if number == 12 else f"{year:04d}-{number + 1:02d}"
    return month, following


def months_ahead(count: int = 3) -> list[str]:
    """This month and the next `count - 1`: new rows land in their own partition, not the default one."""
    now = datetime.now(UTC)
    months = []
    year, number = now.year, now.month
    for _ in range(count):
        months.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months


def _create_archive_tables(postgres: bool) -> None:
    n = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "archived_periods",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("rows", n, nullable=False),
        sa.Column("snapshot_id", sa.String(20), nullable=False),
        sa.Column("archived_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "archived_records",
        sa.Column("seq", n, nullable=False),
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("submitted_at", sa.String(40), nullable=False),
        sa.Column("moderated_at", sa.String(40), nullable=True),
        # The whole row as JSON when the snapshot does not publish it (not approved); else NULL.
        sa.Column("unpublished", sa.Text, nullable=True),
    )
    op.create_index("ux_archived_records_id", "archived_records", ["id"], unique=True)
    op.create_index("ux_archived_records_content", "archived_records", ["content_sha256"], unique=True)
    op.create_index("ix_archived_records_month", "archived_records", ["month"])
    if postgres:
        op.create_table(
            "record_keys",
            sa.Column("id", sa.String(16, collation="C"), primary_key=True),
            sa.Column("content_sha256", sa.String(64, collation="C"), nullable=False, unique=True),
            sa.Column("seq", sa.BigInteger, nullable=False),
        )


def _copy_sql(bind: sa.Connection, source: str, target: str) -> str:
    """INSERT copying every stored (not generated) column of `source` into `target`."""
    columns = bind.execute(
        sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
        ),
        {"t": source},
    ).scalars()
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {target} ({names}) SELECT {names} FROM {source}"


def _definitions(bind: sa.Connection) -> tuple[list[str], list[str], str]:
    """record_store's plain (non-unique) index and trigger definitions, and the `records` view's query."""
    indexes = bind.execute(
        sa.text(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = 'record_store'::regclass "
            "AND NOT i.indisunique ORDER BY i.indexrelid"
        )
    ).scalars()
    triggers = bind.execute(
        sa.text(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'record_store'::regclass "
            "AND NOT tgisinternal AND tgname NOT IN ('vdata_record_key', 'vdata_record_key_gone') ORDER BY oid"
        )
    ).scalars()
    view = bind.execute(sa.text("SELECT pg_get_viewdef('records'::regclass)")).scalar_one()
    # A partitioned parent's index reads "ON ONLY"; on a plain table the word must go.
    return [d.replace(" ON ONLY ", " ON ") for d in indexes], list(triggers), view


def _swap_in(bind: sa.Connection, new_table: str, indexes: list[str], triggers: list[str], view: str) -> None:
    """Replace record_store by `new_table` (already filled), keeping the seq sequence, indexes, triggers,
    and the public `records` view with its grant."""
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('record_store', 'seq')")).scalar_one()
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    op.execute("DROP TABLE record_store")
    op.execute(f"ALTER TABLE {new_table} RENAME TO record_store")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY record_store.seq")
    for definition in indexes + triggers:
        op.execute(definition)
    op.execute(f"CREATE VIEW records AS {view}")
    op.execute(POSTGRES_GRANT)


def _postgres_upgrade(bind: sa.Connection) -> None:
    indexes, triggers, view = _definitions(bind)
    months = set(
        bind.execute(sa.text("SELECT DISTINCT substr(submitted_at, 1, 7) FROM record_store")).scalars()
    )
    op.execute("DROP VIEW records")
    op.execute(
        "CREATE TABLE record_store_new (LIKE record_store INCLUDING DEFAULTS INCLUDING GENERATED) "
        'PARTITION BY RANGE (submitted_at COLLATE "C")'
    )
    op.execute("CREATE TABLE record_store_default PARTITION OF record_store_new DEFAULT")
    for month in sorted({m for m in months if MONTH.match(m)} | set(months_ahead())):
        low, high = month_bounds(month)
        op.execute(
            f"CREATE TABLE {partition_name(month)} PARTITION OF record_store_new "
            f"FOR VALUES FROM ('{low}') TO ('{high}')"
        )
    op.execute(_copy_sql(bind, "record_store", "record_store_new"))
    op.execute(
        "INSERT INTO record_keys (id, content_sha256, seq) SELECT id, content_sha256, seq FROM record_store"
    )
    # The unique constraints' indexes are gone with them; seq (keyset) and id (moderation) keep an index.
    indexes += [
        "CREATE INDEX ix_record_store_seq ON record_store (seq)",
        "CREATE INDEX ix_record_store_id ON record_store (id)",
    ]
    _swap_in(bind, "record_store_new", indexes, triggers + POSTGRES_KEY_TRIGGERS, view)


def _postgres_downgrade(bind: sa.Connection) -> None:
    indexes, triggers, view = _definitions(bind)
    indexes = [d for d in indexes if " ix_record_store_seq " not in d and " ix_record_store_id " not in d]
    op.execute("DROP VIEW records")
    op.execute("CREATE TABLE record_store_plain (LIKE record_store INCLUDING DEFAULTS INCLUDING GENERATED)")
    op.execute(_copy_sql(bind, "record_store", "record_store_plain"))
    for name, constraint in UNIQUE_CONSTRAINTS.items():
        op.execute(f"ALTER TABLE record_store_plain ADD CONSTRAINT {name}_plain {constraint}")
    _swap_in(bind, "record_store_plain", indexes, triggers, view)
    for name in UNIQUE_CONSTRAINTS:
        op.execute(f"ALTER TABLE record_store RENAME CONSTRAINT {name}_plain TO {name}")
    op.execute("DROP FUNCTION vdata_record_key()")
    op.execute("DROP FUNCTION vdata_record_key_gone()")
    op.drop_table("record_keys")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _create_archive_tables(postgres)
    if postgres:
        op.execute(POSTGRES_KEY_INSERT)
        op.execute(POSTGRES_KEY_DELETE)
        _postgres_upgrade(bind)
    else:
        op.execute(SQLITE_DEDUP)


def downgrade() -> None:
    bind = op.get_bind()
    archived = bind.execute(sa.text("SELECT month FROM archived_periods ORDER BY month")).scalars().all()
    if archived:
        raise RuntimeError(
            f"months {', '.join(archived)} are archived; bring them back first (vdata archive restore MONTH)"
        )
    if bind.dialect.name == "postgresql":
        _postgres_downgrade(bind)
    else:
        op.execute("DROP TRIGGER IF EXISTS archived_dedup")
    op.drop_table("archived_records")
    op.drop_table("archived_periods")
