"""The asyncio read pool keeps every slot through cancellations (clients that disconnect, timeouts).

Under 32 clients at 1,000,000 records two clients of bench/server_scale.py once waited forever: requests
cancelled while waiting for a slot, or while returning one, must neither swallow the wake-up meant for the
next waiter nor leak their slot. Run against a real PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import create_engine

from vdata.server.pgread import AsyncReadPool

from .conftest import PostgresCluster

pytestmark = pytest.mark.postgres


async def _select_one(pool: AsyncReadPool, hold_s: float = 0.0) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT 1")
        row = await cursor.fetchone()
        if hold_s:
            await asyncio.sleep(hold_s)
        return int(row[0])


@pytest.fixture
def pool(postgres_cluster: PostgresCluster) -> AsyncReadPool:
    return AsyncReadPool(create_engine(postgres_cluster.url()), size=1)


def test_a_waiter_cancelled_after_its_wake_up_passes_the_slot_on(pool: AsyncReadPool) -> None:
    async def scenario() -> int:
        async with pool.connection():
            woken = asyncio.create_task(_select_one(pool))
            waiting = asyncio.create_task(_select_one(pool))
            await asyncio.sleep(0.05)  # both wait for the one slot
        # The slot came back and woke `woken`; it is cancelled before it could run (a client gone).
        woken.cancel()
        result = await asyncio.wait_for(waiting, 5)
        await pool.close()
        return result

    assert asyncio.run(scenario()) == 1


def test_no_slot_is_lost_to_cancellations_at_any_point(pool: AsyncReadPool) -> None:
    async def scenario() -> list[int]:
        for delay in (0.0, 0.001, 0.003, 0.01, 0.02):
            tasks = [asyncio.create_task(_select_one(pool, hold_s=0.005)) for _ in range(12)]
            await asyncio.sleep(delay)
            for task in tasks[::2]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # Every slot is still usable: more reads than the pool's size, all answered.
        results = await asyncio.wait_for(asyncio.gather(*(_select_one(pool) for _ in range(5))), 10)
        await pool.close()
        return list(results)

    assert asyncio.run(scenario()) == [1] * 5
