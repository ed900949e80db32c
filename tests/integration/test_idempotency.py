"""Idempotency keys on real PostgreSQL: a request that outlived its claim cannot overwrite or delete its successor's,
its effect rolls back; and keys past their window are deleted by the retention cleanup."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from messaging.unit_of_work import Transactions, UnitOfWork
from orders.models import OrdersIdempotencyKey
from servicekit.problems import Conflict, Unprocessable
from servicekit.service import idempotency
from tests.helpers import eventually

pytestmark = pytest.mark.usefixtures("orders_orm")

TABLE = OrdersIdempotencyKey._meta.db_table
NO_RELAY = Transactions(relay=lambda: None)


@pytest.fixture
async def effects(orders_owner_db: asyncpg.Pool) -> AsyncIterator[str]:
    """A table the actions write to, standing for an order: what commits is what the user got."""
    table = f"idempotency_effects_{uuid.uuid4().hex[:8]}"
    await orders_owner_db.execute(f"CREATE TABLE {table} (request text NOT NULL)")
    yield table
    await orders_owner_db.execute(f"DROP TABLE {table}")


def writing(table: str, request: str, proceed: asyncio.Event | None = None) -> idempotency.Action:
    async def action(work: UnitOfWork) -> idempotency.Reply:
        await work.conn.execute_query(f"INSERT INTO {table} (request) VALUES ($1)", [request])
        if proceed:
            await proceed.wait()
        return 201, {"request": request}

    return action


def claimed(orders_db: asyncpg.Pool, user_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(await orders_db.fetchval(f"SELECT 1 FROM {TABLE} WHERE user_id = $1", user_id))

    return check


async def run(user_id: str, key: str, action: idempotency.Action, body: dict | None = None) -> idempotency.Outcome:
    fingerprint = idempotency.fingerprint("POST", "/orders", body or {"amount": "1.00"})
    return await idempotency.run_once(
        OrdersIdempotencyKey, NO_RELAY, user_id=user_id, key=key, request_fingerprint=fingerprint, action=action
    )


async def test_a_request_whose_claim_was_taken_over_rolls_back_and_leaves_its_successor_answer(
    orders_db: asyncpg.Pool, effects: str, user_id: str
) -> None:
    proceed = asyncio.Event()
    slow = asyncio.create_task(run(user_id, "k", writing(effects, "first", proceed)))

    await eventually(claimed(orders_db, user_id))
    await orders_db.execute(
        f"UPDATE {TABLE} SET created_at = now() - make_interval(secs => $2) WHERE user_id = $1",
        user_id,
        idempotency.STALE_CLAIM_SECONDS + 1,
    )

    successor = await run(user_id, "k", writing(effects, "second"))
    proceed.set()
    with pytest.raises(Conflict):
        await slow

    assert successor == idempotency.Outcome(201, {"request": "second"})
    assert [row["request"] for row in await orders_db.fetch(f"SELECT request FROM {effects}")] == ["second"]
    replay = await run(user_id, "k", writing(effects, "third"))
    assert replay == idempotency.Outcome(201, {"request": "second"}, replayed=True)


async def test_a_claim_in_flight_is_a_conflict_and_another_request_under_the_key_is_refused(
    orders_db: asyncpg.Pool, effects: str, user_id: str
) -> None:
    proceed = asyncio.Event()
    first = asyncio.create_task(run(user_id, "k", writing(effects, "first", proceed)))
    await eventually(claimed(orders_db, user_id))

    with pytest.raises(Conflict):
        await run(user_id, "k", writing(effects, "again"))
    proceed.set()
    await first

    with pytest.raises(Unprocessable):
        await run(user_id, "k", writing(effects, "other"), body={"amount": "2.00"})


async def test_a_failed_action_releases_its_key_for_a_retry(effects: str, user_id: str) -> None:
    async def failing(work: UnitOfWork) -> idempotency.Reply:
        raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        await run(user_id, "k", failing)

    assert await run(user_id, "k", writing(effects, "retry")) == idempotency.Outcome(201, {"request": "retry"})


async def test_keys_past_their_window_are_deleted_and_recent_ones_kept(orders_db: asyncpg.Pool, user_id: str) -> None:
    for key, age in (("old", idempotency.WINDOW_SECONDS + 60), ("recent", 60)):
        await orders_db.execute(
            f"INSERT INTO {TABLE} (user_id, key, fingerprint, status_code, response, created_at, completed_at) "
            "VALUES ($1, $2, 'f', 201, '{}', now() - make_interval(secs => $3), now())",
            user_id,
            key,
            age,
        )

    assert await idempotency.delete_expired(OrdersIdempotencyKey) >= 1

    kept = await orders_db.fetch(f"SELECT key FROM {TABLE} WHERE user_id = $1", user_id)
    assert [row["key"] for row in kept] == ["recent"]
