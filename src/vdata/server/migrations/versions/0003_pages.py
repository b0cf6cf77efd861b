"""The reader pages: indexes for sorting and filtering, and full-text search over the record text.

SQLite: an FTS5 index (`records_fts`, external content = record_store, rowid = seq) kept current by
triggers. PostgreSQL: a stored column text_tsv = to_tsvector('simple', text) with a GIN index, used
by the `@@` search of the pages.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Each sortable or filterable column of /records gets (status, column, seq): the keyset order of a
# sorted page (and the facet counts' GROUP BY) is then an index walk, not a sort of every approved row.
SORT_INDEXES: dict[str, list[str]] = {
    "ix_record_store_status_strategy_seq": ["status", "strategy", "seq"],
    "ix_record_store_status_provider_seq": ["status", "provider", "seq"],
    "ix_record_store_status_contributor_seq": ["status", "contributor", "seq"],
    "ix_record_store_status_created_seq": ["status", "created_at", "seq"],
}

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE records_fts USING fts5(text, content='record_store', content_rowid='seq', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER record_store_fts_insert AFTER INSERT ON record_store BEGIN "
    "INSERT INTO records_fts(rowid, text) VALUES (new.seq, new.text); END",
    "CREATE TRIGGER record_store_fts_delete AFTER DELETE ON record_store BEGIN "
    "INSERT INTO records_fts(records_fts, rowid, text) VALUES ('delete', old.seq, old.text); END",
    "CREATE TRIGGER record_store_fts_update AFTER UPDATE OF text ON record_store BEGIN "
    "INSERT INTO records_fts(records_fts, rowid, text) VALUES ('delete', old.seq, old.text); "
    "INSERT INTO records_fts(rowid, text) VALUES (new.seq, new.text); END",
    "INSERT INTO records_fts(records_fts) VALUES ('rebuild')",
]
# A stored tsvector: a search page can then walk the (status, seq) index and test each row cheaply,
# stopping after its 51 rows, instead of fetching every match through the GIN index and sorting them.
POSTGRES_FTS = [
    "ALTER TABLE record_store ADD COLUMN text_tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED",
    "CREATE INDEX ix_record_store_text_tsv ON record_store USING GIN (text_tsv)",
]


def upgrade() -> None:
    for name, columns in SORT_INDEXES.items():
        op.create_index(name, "record_store", columns)
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_FTS:
            op.execute(statement)
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_record_store_text_tsv")
        op.execute("ALTER TABLE record_store DROP COLUMN IF EXISTS text_tsv")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS record_store_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS records_fts")
    for name in SORT_INDEXES:
        op.drop_index(name, "record_store")
