"""At volume: exact counts kept by triggers, so /v1/stats and the `stats` view read a few hundred rows
instead of grouping every record; and an index on the approval time as the incremental snapshot asks
for it (`COALESCE(moderated_at, submitted_at)`, snapshot._approved_at), which 0002's index on
moderated_at alone cannot serve: finding a day's approvals no longer reads the whole table.

`record_counts` holds counts per (status, category, strategy, provider); `record_days` records submitted
per day. Triggers keep them in the same transaction as the write, whatever the path (PUT, moderation,
an operator's UPDATE):

- SQLite: row triggers that add or subtract 1 in place (UPSERT on a unique key); SQLite has one writer
  at a time, so nothing waits on a counter row.
- PostgreSQL: statement triggers over transition tables that append one delta row per group of the
  statement (no unique key, no UPDATE): concurrent PUTs never wait on each other's counter rows.
  Readers sum the rows; `store.compact_counts` folds them back into one row per group.

The public `stats` view (what /v1/query sees) is redefined over `record_counts`, with the same columns.

Revision ID: 0005_scale
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_scale"
down_revision = "0004_gate"
branch_labels = None
depends_on = None

GROUP = "status, category, strategy, provider"
APPROVED_AT_INDEX = "ix_record_store_approved_at"

FILL = [
    f"INSERT INTO record_counts ({GROUP}, n) SELECT {GROUP}, COUNT(*) FROM record_store GROUP BY {GROUP}",
    "INSERT INTO record_days (day, n) SELECT substr(submitted_at, 1, 10), COUNT(*) FROM record_store "
    "GROUP BY substr(submitted_at, 1, 10)",
]

STATS_VIEW = (
    f"SELECT {GROUP}, CAST(SUM(n) AS BIGINT) AS n FROM record_counts GROUP BY {GROUP} HAVING SUM(n) <> 0"
)
OLD_STATS_VIEW = f"SELECT {GROUP}, COUNT(*) AS n FROM record_store GROUP BY {GROUP}"


def _sqlite_count(sign: str, row: str) -> str:
    return (
        f"INSERT INTO record_counts ({GROUP}, n) VALUES "
        f"({row}.status, {row}.category, {row}.strategy, {row}.provider, {sign}1) "
        f"ON CONFLICT ({GROUP}) DO UPDATE SET n = n {sign} 1;"
    )


def _sqlite_day(sign: str, row: str) -> str:
    return (
        f"INSERT INTO record_days (day, n) VALUES (substr({row}.submitted_at, 1, 10), {sign}1) "
        f"ON CONFLICT (day) DO UPDATE SET n = n {sign} 1;"
    )


SQLITE_TRIGGERS = {
    "record_counts_insert": "AFTER INSERT ON record_store BEGIN "
    + _sqlite_count("+", "new")
    + _sqlite_day("+", "new")
    + " END",
    "record_counts_delete": "AFTER DELETE ON record_store BEGIN "
    + _sqlite_count("-", "old")
    + _sqlite_day("-", "old")
    + " END",
    "record_counts_update": f"AFTER UPDATE OF {GROUP}, submitted_at ON record_store BEGIN "
    + _sqlite_count("-", "old")
    + _sqlite_count("+", "new")
    + _sqlite_day("-", "old")
    + _sqlite_day("+", "new")
    + " END",
}


def _pg_counts(select: str) -> str:
    return f"INSERT INTO record_counts ({GROUP}, n) {select};"


POSTGRES_FUNCTIONS = {
    "vdata_count_insert": _pg_counts(f"SELECT {GROUP}, COUNT(*) FROM new_rows GROUP BY {GROUP}")
    + " INSERT INTO record_days (day, n) SELECT substr(submitted_at, 1, 10), COUNT(*) FROM new_rows "
    "GROUP BY 1;",
    "vdata_count_delete": _pg_counts(f"SELECT {GROUP}, -COUNT(*) FROM old_rows GROUP BY {GROUP}")
    + " INSERT INTO record_days (day, n) SELECT substr(submitted_at, 1, 10), -COUNT(*) FROM old_rows "
    "GROUP BY 1;",
    # An UPDATE adds a row only for the groups whose count changed (a moderation: two rows).
    "vdata_count_update": _pg_counts(
        f"SELECT {GROUP}, SUM(d) FROM (SELECT {GROUP}, 1 AS d FROM new_rows UNION ALL "
        f"SELECT {GROUP}, -1 FROM old_rows) AS changed GROUP BY {GROUP} HAVING SUM(d) <> 0"
    )
    + " INSERT INTO record_days (day, n) SELECT day, SUM(d) FROM (SELECT substr(submitted_at, 1, 10) "
    "AS day, 1 AS d FROM new_rows UNION ALL SELECT substr(submitted_at, 1, 10), -1 FROM old_rows) AS "
    "changed GROUP BY day HAVING SUM(d) <> 0;",
}
POSTGRES_TRIGGERS = {
    "vdata_count_insert": "AFTER INSERT ON record_store REFERENCING NEW TABLE AS new_rows",
    "vdata_count_delete": "AFTER DELETE ON record_store REFERENCING OLD TABLE AS old_rows",
    "vdata_count_update": "AFTER UPDATE ON record_store REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


# When a database administrator created vdata_readonly (scripts/deploy/roles.sql) and the server's own
# login may not alter roles, 0001's role block stops before its grant; the grant alone needs only
# ownership of the views. A role that cannot be granted to is warned about, not fatal.
POSTGRES_GRANT = """
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'vdata_readonly') THEN
    GRANT SELECT ON records, stats TO vdata_readonly;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'vdata: cannot grant the read-only role vdata_readonly the public views (%)', SQLERRM;
END
$$;
"""


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    n = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "record_counts",
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("strategy", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("n", n, nullable=False),
    )
    op.create_table(
        "record_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("n", n, nullable=False),
    )
    if not postgres:
        op.create_index("ux_record_counts_group", "record_counts", GROUP.split(", "), unique=True)
        op.create_index("ux_record_days_day", "record_days", ["day"], unique=True)
    op.execute(f"CREATE INDEX {APPROVED_AT_INDEX} ON record_store (COALESCE(moderated_at, submitted_at))")
    for statement in FILL:
        op.execute(statement)
    if postgres:
        for name, body in POSTGRES_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} "
                "RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} {POSTGRES_TRIGGERS[name]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        # Same columns and types: the view keeps its grants (the read-only role of /v1/query).
        op.execute(f"CREATE OR REPLACE VIEW stats AS {STATS_VIEW}")
        op.execute(POSTGRES_GRANT)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        op.execute("DROP VIEW stats")
        op.execute(f"CREATE VIEW stats AS {STATS_VIEW}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE OR REPLACE VIEW stats AS {OLD_STATS_VIEW}")
        for name in POSTGRES_FUNCTIONS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON record_store")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        op.execute("DROP VIEW stats")
        op.execute(f"CREATE VIEW stats AS {OLD_STATS_VIEW}")
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP INDEX {APPROVED_AT_INDEX}")
    op.drop_table("record_days")
    op.drop_table("record_counts")
