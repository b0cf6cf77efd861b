"""Searches at volume: `record_days` also keeps the lowest and highest `seq` stored each day (PostgreSQL).

A resumed search (seq_search.py) reads a stretch of seq through the GIN indexes. Those indexes are per
month partition (0006), but the planner can skip a partition only by `submitted_at`, so before it read
every month's posting lists: they grow with the table (about 5 ms of a 10^7-row search). A server sets
`seq` and `submitted_at` at the same PUT, so a stretch of seq lies in a few days; with each day's seq
bounds the search adds a `submitted_at` range that holds the stretch (partitions.submitted_in_seq_range),
and PostgreSQL prunes the other months when it runs the statement. Exact whatever the order: the bounds
come from the rows themselves, read in the statement's own snapshot.

The count triggers of 0005 write the bounds with their delta rows; `store.compact_counts` folds them with
MIN and MAX. A row without bounds (written by hand, or by `archive._adjust_counts`, which only moves the
counts) says nothing about where its day's rows lie: when it adds rows (n > 0), its day always counts as
in range, and compacting keeps it so. Rows that take rows away (n < 0) carry no bounds. The bounds
stay as wide as they were when rows leave (deletes, archived months): wider is still exact.

SQLite has no partitions and does not need them: its `record_days` is unchanged.

Revision ID: 0009_day_seqs
Revises: 0008_one_key
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0009_day_seqs"
down_revision = "0008_one_key"
branch_labels = None
depends_on = None

_SCALE = importlib.import_module("vdata.server.migrations.versions.0005_scale")
_GROUP = _SCALE.GROUP


def _counts(select: str) -> str:
    return f"INSERT INTO record_counts ({_GROUP}, n) {select};"


_DAY = "substr(submitted_at, 1, 10)"
FUNCTIONS = {
    "vdata_count_insert": _counts(f"SELECT {_GROUP}, COUNT(*) FROM new_rows GROUP BY {_GROUP}")
    + f" INSERT INTO record_days (day, n, min_seq, max_seq) SELECT {_DAY}, COUNT(*), MIN(seq), MAX(seq) "
    "FROM new_rows GROUP BY 1;",
    "vdata_count_delete": _counts(f"SELECT {_GROUP}, -COUNT(*) FROM old_rows GROUP BY {_GROUP}")
    + f" INSERT INTO record_days (day, n) SELECT {_DAY}, -COUNT(*) FROM old_rows GROUP BY 1;",
    # As 0005's; a row that moves to another day (its submitted_at changed) brings its seq to that day.
    "vdata_count_update": _counts(
        f"SELECT {_GROUP}, SUM(d) FROM (SELECT {_GROUP}, 1 AS d FROM new_rows UNION ALL "
        f"SELECT {_GROUP}, -1 FROM old_rows) AS changed GROUP BY {_GROUP} HAVING SUM(d) <> 0"
    )
    + f" INSERT INTO record_days (day, n, min_seq, max_seq) SELECT day, SUM(d), MIN(s), MAX(s) FROM "
    f"(SELECT {_DAY} AS day, 1 AS d, seq AS s FROM new_rows UNION ALL SELECT {_DAY}, -1, NULL FROM "
    "old_rows) AS changed GROUP BY day HAVING SUM(d) <> 0;",
}

REFILL = [
    "LOCK TABLE record_store IN SHARE MODE",  # no write between the count and the triggers' new bodies
    "DELETE FROM record_days",
    f"INSERT INTO record_days (day, n, min_seq, max_seq) SELECT {_DAY}, COUNT(*), MIN(seq), MAX(seq) "
    "FROM record_store GROUP BY 1",
]


def _replace_functions(bodies: dict[str, str]) -> None:
    for name, body in bodies.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} "
            "RETURN NULL; END $$"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REFILL[0])
    op.execute("ALTER TABLE record_days ADD COLUMN min_seq BIGINT, ADD COLUMN max_seq BIGINT")
    _replace_functions(FUNCTIONS)
    # One pass over the table: minutes at 10^8 rows, once.
    for statement in REFILL[1:]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _replace_functions(_SCALE.POSTGRES_FUNCTIONS)
    op.execute("ALTER TABLE record_days DROP COLUMN min_seq, DROP COLUMN max_seq")
