"""Orders asks Payments to close the orders PENDING past their deadline, through its outbox, and never fails an order
on its own word. Instances asking at once never ask twice about one order; an order asked about is asked again one
deadline later if it is still PENDING."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import pytest

from messaging.unit_of_work import Transactions
from orders import service
from stack.kafka import create_topics
from stack.local import LocalStack

pytestmark = pytest.mark.usefixtures("orders_orm", "deadline_topic")

# Shorter than the session's own deadline, so that its Orders instance leaves these orders alone.
DEADLINE = 5.0
TOPIC = "deadline-tests"
# The session's Orders relays publish these tests' requests, at its next poll.
NO_RELAY = Transactions(relay=lambda: None)


@pytest.fixture(scope="module")
async def deadline_topic(infra: LocalStack) -> None:
    """The session's Orders relays the rows these tests write: their topic must exist, or the relay would retry
    them, and every row behind them in their lanes, until it did."""
    await create_topics(infra.broker.bootstrap_servers, [TOPIC], partitions=1)


async def overdue_order(orders_db: asyncpg.Pool, user_id: str, age: float) -> uuid.UUID:
    order_id = uuid.uuid4()
    await orders_db.execute(
        "INSERT INTO orders (id, user_id, amount, status, created_at, updated_at) "
        "VALUES ($1, $2, 7.50, 'PENDING', now() - make_interval(secs => $3), now())",
        order_id,
        user_id,
        age,
    )
    return order_id


async def requests_for(orders_db: asyncpg.Pool, order_id: uuid.UUID) -> list[dict]:
    rows = await orders_db.fetch("SELECT payload FROM outbox WHERE topic = $1", TOPIC)
    return [event for row in rows if (event := json.loads(row["payload"]))["order_id"] == str(order_id)]


async def ask(deadline: float = DEADLINE) -> list[uuid.UUID]:
    return await service.request_expiry_of_overdue(NO_RELAY, deadline, TOPIC)


async def test_an_overdue_order_is_asked_about_once_and_stays_pending(orders_db: asyncpg.Pool) -> None:
    user_id = f"deadline-{uuid.uuid4().hex[:10]}"
    overdue = await overdue_order(orders_db, user_id, age=DEADLINE + 2)
    recent = await overdue_order(orders_db, user_id, age=1)

    asked = await ask()

    assert overdue in asked
    assert recent not in asked
    [request] = await requests_for(orders_db, overdue)
    assert (request["type"], request["user_id"], request["amount"]) == ("payment.expire_requested", user_id, "7.50")
    assert await orders_db.fetchval("SELECT status FROM orders WHERE id = $1", overdue) == "PENDING"
    assert overdue not in await ask(), "asked again only one deadline later"


async def test_an_order_still_pending_a_deadline_after_it_was_asked_about_is_asked_again(
    orders_db: asyncpg.Pool,
) -> None:
    order_id = await overdue_order(orders_db, f"deadline-{uuid.uuid4().hex[:10]}", age=3 * DEADLINE)
    assert order_id in await ask()
    await orders_db.execute(
        "UPDATE orders SET expiry_requested_at = now() - make_interval(secs => $2) WHERE id = $1",
        order_id,
        DEADLINE + 1,
    )

    assert order_id in await ask()
    assert len(await requests_for(orders_db, order_id)) == 2


async def test_instances_asking_at_once_never_ask_twice_about_one_order(orders_db: asyncpg.Pool) -> None:
    user_id = f"deadline-{uuid.uuid4().hex[:10]}"
    orders = {await overdue_order(orders_db, user_id, age=DEADLINE + 2) for _ in range(40)}

    rounds = await asyncio.gather(*(ask() for _ in range(4)))

    asked = [order_id for round_ in rounds for order_id in round_ if order_id in orders]
    assert sorted(asked) == sorted(orders)
    for order_id in orders:
        assert len(await requests_for(orders_db, order_id)) == 1


async def test_a_settled_order_is_never_asked_about(orders_db: asyncpg.Pool) -> None:
    order_id = await overdue_order(orders_db, f"deadline-{uuid.uuid4().hex[:10]}", age=DEADLINE + 2)
    await orders_db.execute("UPDATE orders SET status = 'PAID' WHERE id = $1", order_id)

    assert order_id not in await ask()
    assert await requests_for(orders_db, order_id) == []


async def test_the_amount_asked_about_is_the_orders_own(orders_db: asyncpg.Pool) -> None:
    order_id = await overdue_order(orders_db, f"deadline-{uuid.uuid4().hex[:10]}", age=DEADLINE + 2)
    await ask()
    [request] = await requests_for(orders_db, order_id)
    assert Decimal(request["amount"]) == Decimal("7.50")
