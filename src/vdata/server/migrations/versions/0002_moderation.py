"""Moderation: moderator accounts and browser sessions, contribution batches, the append-only moderation
log, hygiene signatures of records (for near-duplicate flags), and the operator's running costs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# History is never rewritten: the database itself refuses UPDATE and DELETE on these tables, whatever
# the code above it does. A correction is a new row.
APPEND_ONLY = ("moderation_log", "operating_cost")

POSTGRES_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION vdata_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
"""


def _append_only(table: str, dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vdata_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vdata_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {action} refused'); END"
            )


def upgrade() -> None:
    bigint = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    dialect = op.get_bind().dialect.name
    op.create_table(
        "moderator",
        sa.Column("name", sa.String(100), primary_key=True),
        # The token's public part, to find the row; the secret part is stored only as its scrypt hash.
        sa.Column("token_id", sa.String(16), nullable=False, unique=True),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("revoked_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "moderator_session",
        # SHA-256 of the cookie value (a 256-bit random secret): a database leak reveals no live cookie.
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("moderator", sa.String(100), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("ended_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "contribution_batch",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("contributor", sa.String(100), nullable=False),
        sa.Column("submitted_at", sa.String(40), nullable=False),
        sa.Column("n_records", sa.Integer, nullable=False),
    )
    op.create_table(
        "batch_record",
        sa.Column("record_id", sa.String(16), primary_key=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_batch_record_batch", "batch_record", ["batch_id"])
    op.create_table(
        "moderation_log",
        sa.Column("seq", bigint, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("moderator", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=True),
        sa.Column("old_status", sa.String(10), nullable=False),
        sa.Column("new_status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_moderation_log_record", "moderation_log", ["record_id", "seq"])
    op.create_index("ix_moderation_log_at", "moderation_log", ["at"])
    op.create_table(
        "record_signature",
        sa.Column("seq", bigint, nullable=False),
        # -1: hash of the whole token sequence (duplicate); 0..: MinHash LSH bands (near duplicate).
        sa.Column("band", sa.SmallInteger, nullable=False),
        sa.Column("hash", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_record_signature_hash", "record_signature", ["hash", "band"])
    op.create_index("ix_record_signature_seq", "record_signature", ["seq"])
    op.create_table(
        "operating_cost",
        sa.Column("seq", bigint, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("item", sa.String(40), nullable=False),
        # Cents: money is never a float. Negative amounts correct earlier entries.
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("entered_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_record_store_moderated_at", "record_store", ["moderated_at"])
    if dialect == "postgresql":
        op.execute(POSTGRES_REFUSE_FUNCTION)
    for table in APPEND_ONLY:
        _append_only(table, dialect)


def downgrade() -> None:
    op.drop_index("ix_record_store_moderated_at", "record_store")
    for table in (
        "operating_cost",
        "record_signature",
        "moderation_log",
        "batch_record",
        "contribution_batch",
        "moderator_session",
        "moderator",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS vdata_append_only()")
