"""PostgreSQL: a running server makes the months' partitions ahead again (partitions.MonthsAheadKeeper),
so a server up for months keeps giving each month its own partition instead of the DEFAULT one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from vdata.server import partitions

from .snapshot_helpers import make_db

pytestmark = pytest.mark.postgres


def test_a_running_server_makes_the_months_ahead_again(postgres_cluster: Any) -> None:
    engine = make_db(postgres_cluster.create_database())
    last = partitions.months_ahead()[-1]
    with engine.begin() as conn:  # as if the server had started before that month was one of the next two
        conn.exec_driver_sql(f"DROP TABLE {partitions.partition_name(last)}")
        assert not partitions.has_partition(conn, last)
    keeper = partitions.MonthsAheadKeeper(engine, every_s=0.05)
    keeper.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                if partitions.has_partition(conn, last):
                    break
            assert time.monotonic() < deadline, f"no partition for {last} after 30 s"
            time.sleep(0.05)
    finally:
        keeper.stop()
    assert keeper._thread is not None and not keeper._thread.is_alive()
