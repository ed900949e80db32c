"""The operations figures' counts: exact while a table is small, PostgreSQL's estimate once it is large, and exact
up to the bound for the few rows a partial index holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from tortoise import connections

from messaging.counting import EXACT_UP_TO, count, count_by

Fill = Callable[[str, int, int], Awaitable[None]]


@pytest.fixture
async def table(orders_orm: None, orders_owner_db: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"counting_{uuid.uuid4().hex[:8]}"
    await orders_owner_db.execute(
        f"CREATE TABLE {name} (id bigint PRIMARY KEY, state text NOT NULL);"
        f"CREATE INDEX {name}_waiting ON {name} (id) WHERE state = 'WAITING'"
    )
    yield name
    await orders_owner_db.execute(f"DROP TABLE {name}")


@pytest.fixture
def fill(orders_owner_db: asyncpg.Pool) -> Fill:
    async def fill(table: str, rows: int, waiting: int) -> None:
        """``rows`` rows, 3 in 4 DONE and 1 in 4 FAILED, except the first ``waiting``, WAITING; then ANALYZE (only
        the owner may), as autovacuum would."""
        await orders_owner_db.execute(
            f"INSERT INTO {table} SELECT n, CASE WHEN n <= {waiting} THEN 'WAITING' WHEN n % 4 = 0 THEN 'FAILED' "
            f"ELSE 'DONE' END FROM generate_series(1, {rows}) AS n; ANALYZE {table}"
        )

    return fill


async def test_a_small_table_is_counted_exactly(table: str, fill: Fill) -> None:
    await fill(table, 100, waiting=3)
    db = connections.get("default")

    by_state, exact = await count_by(db, table, "state", ("WAITING", "DONE", "FAILED", "LOST"))

    assert exact
    assert by_state == {"WAITING": 3, "DONE": 72, "FAILED": 25, "LOST": 0}
    assert await count(db, table) == await count(db, table, bound=100)


async def test_a_large_table_is_estimated_and_its_few_waiting_rows_still_counted(table: str, fill: Fill) -> None:
    rows = 4 * EXACT_UP_TO
    await fill(table, rows, waiting=7)
    db = connections.get("default")

    by_state, exact = await count_by(db, table, "state", ("DONE", "FAILED"))
    total = await count(db, table)
    waiting = await count(db, f"{table} WHERE state = 'WAITING'")

    assert not exact
    assert by_state["DONE"] == pytest.approx(0.75 * rows, rel=0.1)
    assert by_state["FAILED"] == pytest.approx(0.25 * rows, rel=0.1)
    assert not total.exact
    assert total.value == pytest.approx(rows, rel=0.1)
    assert (waiting.value, waiting.exact) == (7, True)
