"""The contribution gate's reports (one per contribution batch) and the dataset's benchmark history.

Revision ID: 0004_gate
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_gate"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contribution_report",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        # pending (queued), running (taken by a gate worker), done, failed (error says why).
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("report", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_contribution_report_status", "contribution_report", ["status"])
    op.create_table(
        "benchmarks",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("snapshot_id", sa.String(100), nullable=True),
        # The run's own `created` (benchmark.json), and when this server stored it.
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        # The whole benchmark.json document, as written by `vdata benchmark-dataset`.
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_benchmarks_created", "benchmarks", ["created", "seq"])


def downgrade() -> None:
    op.drop_index("ix_benchmarks_created", "benchmarks")
    op.drop_table("benchmarks")
    op.drop_index("ix_contribution_report_status", "contribution_report")
    op.drop_table("contribution_report")
