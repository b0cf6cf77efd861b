"""PUT at volume: `record_keys` keeps one unique index, on `id`, instead of two.

A record's `id` is the first 16 hex digits of its `content_sha256` (core.records.record_id; both hash the
same normalised text), so two rows with the same content hash have the same id, and the unique index on
`id` already refuses every duplicate the one on `content_sha256` would. That second index was pure cost,
and the larger one: 1.22 GB of the key table's 1.75 GB of indexes at 10^7 records, where each PUT of 200
records inserted 200 random keys into each (the keys are hashes: every insert lands on a random leaf
page), and the key insert went from 5.4 ms per batch at 10^5 records to 28.4 ms at 10^7 (docs/server.md,
Scale). A CHECK constraint makes the implication the database's own: a row whose id is not its hash's
prefix (an operator's hand-made INSERT) is refused instead of slipping past the dedup.

PostgreSQL only: SQLite's `record_store` is not partitioned and keeps its two unique constraints.

Revision ID: 0008_one_key
Revises: 0007_substring
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0008_one_key"
down_revision = "0007_substring"
branch_labels = None
depends_on = None

ID_IS_HASH_PREFIX = "ck_record_keys_id_is_hash_prefix"


def _content_unique_constraints() -> list[str]:
    """Names of record_keys' unique constraints on content_sha256 alone (0006 left the name to PostgreSQL)."""
    rows = op.get_bind().execute(
        text(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) WHERE c.conrelid = CAST('record_keys' AS regclass) "
            "AND c.contype = 'u' AND a.attname = 'content_sha256' AND cardinality(c.conkey) = 1"
        )
    )
    return [r[0] for r in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # NOT VALID then VALIDATE is how an operator would add it to a live table in two transactions;
    # here both run in the migration's one transaction, so writes wait for the check's scan.
    op.execute(
        f"ALTER TABLE record_keys ADD CONSTRAINT {ID_IS_HASH_PREFIX} "
        "CHECK (id = left(content_sha256, 16)) NOT VALID"
    )
    op.execute(f"ALTER TABLE record_keys VALIDATE CONSTRAINT {ID_IS_HASH_PREFIX}")
    for name in _content_unique_constraints():
        op.execute(f'ALTER TABLE record_keys DROP CONSTRAINT "{name}"')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE record_keys ADD CONSTRAINT record_keys_content_sha256_key UNIQUE (content_sha256)"
    )
    op.execute(f"ALTER TABLE record_keys DROP CONSTRAINT IF EXISTS {ID_IS_HASH_PREFIX}")
