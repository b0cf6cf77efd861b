"""Initial schema: record_store, the public views `records` and `stats`, and PostgreSQL's read-only role.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RECORDS_VIEW = """
CREATE VIEW records AS
SELECT id, text, target, attribute, category, strategy, provider, model, created_at, contributor
FROM record_store WHERE status = 'approved'
"""

STATS_VIEW = """
CREATE VIEW stats AS
SELECT status, category, strategy, provider, COUNT(*) AS n
FROM record_store GROUP BY status, category, strategy, provider
"""

# The role /v1/query runs under on PostgreSQL: may read the two views and nothing else, read-only,
# with a statement timeout. Creating it needs CREATEROLE; without it the server still runs queries
# in READ ONLY transactions with a timeout and logs that the role layer is missing.
POSTGRES_ROLE = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vdata_readonly') THEN
    CREATE ROLE vdata_readonly NOLOGIN;
  END IF;
  ALTER ROLE vdata_readonly SET default_transaction_read_only = on;
  ALTER ROLE vdata_readonly SET statement_timeout = '1s';
  EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO vdata_readonly';
  GRANT SELECT ON records, stats TO vdata_readonly;
  IF NOT pg_has_role(current_user, 'vdata_readonly', 'MEMBER') THEN
    EXECUTE 'GRANT vdata_readonly TO ' || quote_ident(current_user);
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'vdata: cannot create the read-only role vdata_readonly (%)', SQLERRM;
END
$$;
"""


def upgrade() -> None:
    bigint = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "record_store",
        sa.Column("seq", bigint, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(16), nullable=False, unique=True),
        sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("attribute", sa.Text, nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("strategy", sa.String(40), nullable=False),
        sa.Column("attributes", sa.Text, nullable=True),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("vdata_version", sa.String(40), nullable=False),
        sa.Column("contributor", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("submitted_at", sa.String(40), nullable=False),
        sa.Column("moderated_at", sa.String(40), nullable=True),
    )
    op.create_index("ix_record_store_status_seq", "record_store", ["status", "seq"])
    op.create_index("ix_record_store_status_category_seq", "record_store", ["status", "category", "seq"])
    op.execute(RECORDS_VIEW)
    op.execute(STATS_VIEW)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_ROLE)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS stats")
    op.execute("DROP VIEW IF EXISTS records")
    op.drop_table("record_store")
