"""The Orders consumer settles all the payment results of a poll in one statement: each PENDING order takes its
own result, an order already settled keeps its status, and every order that moved is announced to the live
sockets once."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from messaging.events import FailureReason
from orders import service
from orders.service import STATUS_CHANNEL, PaymentOutcome
from tests.helpers import eventually

pytestmark = pytest.mark.usefixtures("orders_orm")


async def new_order(orders_db: asyncpg.Pool, user_id: str, status: str = "PENDING") -> uuid.UUID:
    """An order with no payment command in the outbox, so nothing but the test settles it."""
    order_id = uuid.uuid4()
    await orders_db.execute(
        "INSERT INTO orders (id, user_id, amount, description, status, failure_reason, created_at, updated_at) "
        "VALUES ($1, $2, 5.00, 'results', $3, $4, now(), now())",
        order_id,
        user_id,
        status,
        FailureReason.INSUFFICIENT_FUNDS if status == "FAILED" else None,
    )
    return order_id


@pytest.fixture
async def announced(orders_db: asyncpg.Pool) -> AsyncIterator[list[str]]:
    """The order ids NOTIFYed on the live-status channel while the test runs."""
    heard: list[str] = []
    async with orders_db.acquire() as conn:
        await conn.add_listener(
            STATUS_CHANNEL, lambda *notification: heard.append(json.loads(notification[3])["order_id"])
        )
        yield heard
        await conn.reset()


async def statuses(orders_db: asyncpg.Pool, *order_ids: uuid.UUID) -> list[tuple[str, str | None]]:
    rows = {
        row["id"]: (row["status"], row["failure_reason"])
        for row in await orders_db.fetch("SELECT id, status, failure_reason FROM orders WHERE id = ANY($1)", order_ids)
    }
    return [rows[order_id] for order_id in order_ids]


async def test_a_poll_of_results_settles_each_pending_order_once(orders_db: asyncpg.Pool, announced: list[str]) -> None:
    user_id = f"results-{uuid.uuid4().hex[:12]}"
    paid, refused, settled_before = [await new_order(orders_db, user_id) for _ in range(2)] + [
        await new_order(orders_db, user_id, status="FAILED")
    ]

    async with in_transaction() as conn:
        await service.apply_payment_results(
            conn,
            [
                PaymentOutcome(paid, None),
                PaymentOutcome(refused, FailureReason.ACCOUNT_NOT_FOUND),
                PaymentOutcome(settled_before, None),
                PaymentOutcome(paid, FailureReason.INSUFFICIENT_FUNDS),
            ],
        )

    assert await statuses(orders_db, paid, refused, settled_before) == [
        ("PAID", None),
        ("FAILED", "ACCOUNT_NOT_FOUND"),
        ("FAILED", "INSUFFICIENT_FUNDS"),
    ]
    ours = {str(order_id) for order_id in (paid, refused, settled_before)}

    async def heard_both() -> list[str]:
        heard = sorted(order_id for order_id in announced if order_id in ours)
        return heard if len(heard) >= 2 else []

    assert await eventually(heard_both) == sorted([str(paid), str(refused)])
