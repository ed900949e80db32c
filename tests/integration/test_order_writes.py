"""POST /orders writes the order and its payment command in one statement, with no transaction around it when
the request has no Idempotency-Key: the two must still be stored together or not at all."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest
from tortoise.exceptions import BaseORMException

from messaging.unit_of_work import Transactions
from orders import service
from orders.domain import NewOrder
from stack.local import LocalStack

pytestmark = pytest.mark.usefixtures("orders_orm")

NEW_ORDER = NewOrder(amount=Decimal("12.50"), description="atomic")
NO_RELAY = Transactions(relay=lambda: None)


async def stored(orders_db: asyncpg.Pool, user_id: str) -> tuple[int, int]:
    orders = await orders_db.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", user_id)
    commands = await orders_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", user_id)
    return orders, commands


async def test_an_order_whose_payment_command_cannot_be_stored_is_not_stored(orders_db: asyncpg.Pool) -> None:
    user_id = f"atomic-{uuid.uuid4().hex[:12]}"
    # Longer than the outbox's topic column: the command's insert fails after the order's succeeded.
    unstorable_topic = "t" * 250
    placed = service.place_order(user_id=user_id, new=NEW_ORDER, commands_topic=unstorable_topic)
    with pytest.raises(BaseORMException):
        await NO_RELAY.run_alone(placed.statement)
    assert await stored(orders_db, user_id) == (0, 0)


async def test_an_order_is_stored_with_its_payment_command(infra: LocalStack, orders_db: asyncpg.Pool) -> None:
    # A user without an account: if a running stack's relay publishes the command, the order just fails.
    user_id = f"atomic-{uuid.uuid4().hex[:12]}"
    placed = service.place_order(user_id=user_id, new=NEW_ORDER, commands_topic=infra.topics.payment_commands)
    await NO_RELAY.run_alone(placed.statement)
    order = placed.order
    assert await stored(orders_db, user_id) == (1, 1)
    payload = await orders_db.fetchval("SELECT payload FROM outbox WHERE key = $1", user_id)
    assert str(order.id) in payload
