"""Substring search at volume: a trigram index for `/v1/records?q=` (case-insensitive substring).

Before, `lower(text) LIKE '%q%'` had no index to use: a string few records contain read every approved
row (23.6 s p50 at 10^6 records on SQLite, linear in the table). A trigram index finds the rows holding
every three-character piece of the string:

- PostgreSQL: `pg_trgm`'s GIN operator class on `lower(text)` (the expression the query filters on), so
  the planner serves `lower(text) LIKE '%q%'` from it when the string is rare (for a frequent word the
  `(status, seq)` walk is faster; at 10^7 rows that search was 22x slower than at 10^5, probably because
  the planner no longer picks the walk: not yet checked with EXPLAIN, docs/server.md). On the partitioned `record_store` (0006) the index is created on
  every month's partition, including those made or attached later.
- SQLite: an FTS5 table with the `trigram` tokenizer (`records_trgm`, external content = record_store,
  rowid = seq), kept current by triggers like 0003's `records_fts`. The query joins it first and keeps
  the LIKE test, so the answer is exactly the old one (FTS5 folds case more widely than `lower`).

Strings shorter than three characters have no trigram and keep the scan (store.SUBSTRING_INDEX_MIN).

Revision ID: 0007_substring
Revises: 0006_archive
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0007_substring"
down_revision = "0006_archive"
branch_labels = None
depends_on = None

POSTGRES_INDEX = "ix_record_store_text_trgm"

SQLITE = [
    "CREATE VIRTUAL TABLE records_trgm USING fts5(text, content='record_store', content_rowid='seq', "
    "tokenize='trigram case_sensitive 0', detail='none')",
    "CREATE TRIGGER record_store_trgm_insert AFTER INSERT ON record_store BEGIN "
    "INSERT INTO records_trgm(rowid, text) VALUES (new.seq, new.text); END",
    "CREATE TRIGGER record_store_trgm_delete AFTER DELETE ON record_store BEGIN "
    "INSERT INTO records_trgm(records_trgm, rowid, text) VALUES ('delete', old.seq, old.text); END",
    "CREATE TRIGGER record_store_trgm_update AFTER UPDATE OF text ON record_store BEGIN "
    "INSERT INTO records_trgm(records_trgm, rowid, text) VALUES ('delete', old.seq, old.text); "
    "INSERT INTO records_trgm(rowid, text) VALUES (new.seq, new.text); END",
    "INSERT INTO records_trgm(records_trgm) VALUES ('rebuild')",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX {POSTGRES_INDEX} ON record_store USING GIN (lower(text) gin_trgm_ops)")
    else:
        for statement in SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")  # the extension stays: others may use it
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS record_store_trgm_{trigger}")
        op.execute("DROP TABLE IF EXISTS records_trgm")
