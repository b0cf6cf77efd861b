"""PostgreSQL PUT and `record_keys` (migration 0006): a PUT claims its keys itself, in the statement that
inserts its rows (store._pg_insert_claimed); every other insert still has them claimed by the row trigger.
Migration 0008 leaves the key table one unique index, on `id`."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from vdata.core.records import Record
from vdata.server import db, store
from vdata.server.db import record_store

from .conftest import new_db_url
from .snapshot_helpers import downgrade, make_db

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    made = make_db(new_db_url("postgres", request, tmp_path_factory))
    request.addfinalizer(made.dispose)
    return made


def keys(engine: Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id, content_sha256, seq FROM record_keys")).all())


def stored(engine: Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        return set(
            conn.execute(select(record_store.c.id, record_store.c.content_sha256, record_store.c.seq)).all()
        )


def sentence(i: int, prefix: str = "Key") -> Record:
    return Record(text=f"{prefix} sentence {i}: an engineer or a nurse can be anyone at all.")


def test_a_put_claims_exactly_its_new_rows_keys_with_their_seq_in_batch_order(engine: Engine) -> None:
    first = store.put_records(engine, [sentence(i) for i in range(5)], "a")
    # Repeats inside the batch, a text stored before, a text differing only in spacing and case.
    batch = [
        sentence(9),
        sentence(9),
        sentence(2),
        Record(text="  KEY sentence 3: an engineer or a nurse can be anyone at all. "),
        sentence(7),
    ]
    second = store.put_records(engine, batch, "b")
    assert len(first.accepted) == 5 and first.duplicates == []
    assert second.accepted == [batch[0].id, batch[4].id]
    assert second.duplicates == [batch[1].id, batch[2].id, batch[3].id]
    assert keys(engine) == stored(engine) and len(stored(engine)) == 7
    with engine.connect() as conn:
        seq = dict(conn.execute(select(record_store.c.id, record_store.c.seq)).all())
    order = first.accepted + second.accepted
    assert [seq[i] for i in order] == sorted(seq[i] for i in order)  # keyset pages follow the PUT's order


def test_the_claim_flag_ends_with_the_put_and_other_inserts_still_claim_or_are_refused(
    engine: Engine,
) -> None:
    taken = store.put_records(engine, [sentence(0)], "a").accepted[0]
    with engine.connect() as conn:  # the pool hands out the PUT's own connection again
        assert conn.execute(text("SELECT current_setting('vdata.keys_claimed', true)")).scalar() in (None, "")
    row = store._row_for(sentence(1), "sql", store.now_utc())
    names = ", ".join(row)
    values = ", ".join(f":{c}" for c in row)
    duplicate = store._row_for(sentence(0), "sql", store.now_utc())
    with engine.begin() as conn:  # an operator's INSERT: the trigger claims a free key, skips a taken one
        conn.execute(text(f"INSERT INTO record_store ({names}) VALUES ({values})"), [row, duplicate])
    assert {r[0] for r in stored(engine)} == {taken, row["id"]}
    assert keys(engine) == stored(engine)


def test_copy_claims_its_keys_and_skips_taken_ones(engine: Engine) -> None:
    """The bulk-load path (bench/server_scale.py load_postgres) and the key table stay in step."""
    store.put_records(engine, [sentence(0)], "a")
    rows = [store._row_for(sentence(i, "Copied"), "copy", store.now_utc()) for i in range(3)]
    rows.append(store._row_for(sentence(0), "copy", store.now_utc()))
    columns = list(rows[0])
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with (
        psycopg.connect(url, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY record_store ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in columns])
    assert len(stored(engine)) == 4
    assert keys(engine) == stored(engine)
    assert store.put_records(engine, [sentence(i, "Copied") for i in range(3)], "b").accepted == []
    assert store.stats(engine)["total"] == 4  # the 0005 count triggers saw the rows the trigger kept


def test_one_unique_key_index_and_the_database_refuses_an_id_that_is_not_its_hash_prefix(
    engine: Engine,
) -> None:
    """Migration 0008: the id is the content hash's prefix, so its unique index alone refuses every
    duplicate; the CHECK keeps a hand-made row from breaking that (it would slip past the dedup)."""
    with engine.connect() as conn:
        unique = conn.execute(
            text(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = CAST('record_keys' AS regclass) AND indisunique"
            )
        ).scalars()
        assert [d.split(" USING ")[1] for d in unique] == ["btree (id)"]
    store.put_records(engine, [sentence(0)], "a")
    assert store.put_records(engine, [sentence(0)], "b").duplicates == [sentence(0).id]
    row = store._row_for(sentence(1), "sql", store.now_utc())
    row["id"] = "0" * 16  # not the first 16 hex digits of its content_sha256
    names = ", ".join(row)
    values = ", ".join(f":{c}" for c in row)
    with pytest.raises(IntegrityError, match="ck_record_keys_id_is_hash_prefix"), engine.begin() as conn:
        conn.execute(text(f"INSERT INTO record_store ({names}) VALUES ({values})"), row)
    assert len(stored(engine)) == 1 and keys(engine) == stored(engine)


def test_migration_0008_goes_down_and_up_again(engine: Engine) -> None:
    store.put_records(engine, [sentence(i) for i in range(3)], "a")
    downgrade(engine, "0007_substring")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM record_keys")).scalar_one() == 3
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert store.put_records(engine, [sentence(1), sentence(5)], "b").accepted == [sentence(5).id]
