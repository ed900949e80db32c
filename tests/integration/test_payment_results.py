"""The Orders consumer settles all the payment results of a poll in one statement: each PENDING order takes its
own result, an order already settled keeps its status, and every order that moved is announced to the live
sockets once. A result for an order Orders does not have, or about another user or amount, is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from messaging.events import FailureReason
from messaging.unit_of_work import UnitOfWork
from orders import service
from orders.service import STATUS_CHANNEL, PaymentOutcome
from tests.helpers import eventually

pytestmark = pytest.mark.usefixtures("orders_orm")

FIVE = Decimal("5.00")


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
            UnitOfWork(conn),
            [
                PaymentOutcome(paid, user_id, FIVE, None),
                PaymentOutcome(refused, user_id, FIVE, FailureReason.ACCOUNT_NOT_FOUND),
                PaymentOutcome(settled_before, user_id, FIVE, None),
                PaymentOutcome(paid, user_id, FIVE, FailureReason.INSUFFICIENT_FUNDS),
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


async def test_a_result_that_does_not_match_its_order_is_refused_and_the_rest_applied(orders_db: asyncpg.Pool) -> None:
    user_id = f"results-{uuid.uuid4().hex[:12]}"
    wrong_amount, wrong_user, good = [await new_order(orders_db, user_id) for _ in range(3)]
    unknown = uuid.uuid4()

    async with in_transaction() as conn:
        refused = await service.apply_payment_results(
            UnitOfWork(conn),
            [
                PaymentOutcome(wrong_amount, user_id, Decimal("5.01"), None),
                PaymentOutcome(unknown, user_id, FIVE, None),
                PaymentOutcome(wrong_user, "someone-else", FIVE, FailureReason.INSUFFICIENT_FUNDS),
                PaymentOutcome(good, user_id, FIVE, None),
            ],
        )

    assert refused == {
        0: f"order {wrong_amount} is 5.00 for {user_id}, not 5.01 for {user_id}",
        1: f"order {unknown} does not exist",
        2: f"order {wrong_user} is 5.00 for {user_id}, not 5.00 for someone-else",
    }
    assert await statuses(orders_db, wrong_amount, wrong_user, good) == [
        ("PENDING", None),
        ("PENDING", None),
        ("PAID", None),
    ]
