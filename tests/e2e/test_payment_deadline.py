"""No order stays PENDING for ever, and the money owner decides: past the payment deadline Orders asks Payments to
close the order, Payments fails it with PAYMENT_TIMEOUT only if it never decided it (then no late command can
debit it), and announces whichever decision stands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import httpx
import pytest

from messaging.events import Envelope, PaymentExpireRequested, PaymentRequested
from stack.local import LocalStack, Process, free_ports
from tests.conftest import BROKEN_USERS
from tests.e2e.test_poison import letter_of, pending_order, produce
from tests.helpers import as_user, eventually, funded_account, settled
from tests.integration.kafka_tools import producer

DEADLINE = 2.0


@pytest.fixture(scope="module")
def short_deadline(stack: LocalStack) -> Iterator[Process]:
    """One more Orders instance, whose deadline is short: it asks about every order PENDING for 2 s."""
    (port,) = free_ports(1)
    instance = stack.spawn_service("orders", port=port, env={"ORDERS_PAYMENT_DEADLINE_SECONDS": str(DEADLINE)})
    stack.wait_healthy()
    yield instance
    stack.stop_process(instance)


async def ledger(payments_db: asyncpg.Pool, order_id: uuid.UUID) -> list[tuple[str, str | None]]:
    rows = await payments_db.fetch("SELECT status, failure_reason FROM payments WHERE order_id = $1", order_id)
    return [(row["status"], row["failure_reason"]) for row in rows]


@pytest.mark.usefixtures("short_deadline")
async def test_an_order_whose_command_never_came_fails_with_payment_timeout_and_no_late_command_debits_it(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "50.00")
    order_id = await pending_order(orders_db, user_id, "5.00")

    order = await settled(api, user_id, str(order_id), timeout=30)

    assert (order["status"], order["failure_reason"]) == ("FAILED", "PAYMENT_TIMEOUT")
    assert await ledger(payments_db, order_id) == [("FAILED", "PAYMENT_TIMEOUT")]
    late = Envelope(PaymentRequested(order_id, user_id, Decimal("5.00")))
    await produce(stack, stack.topics.payment_commands, late.to_json().encode(), user_id)

    async def handled() -> bool:
        return bool(await payments_db.fetchval("SELECT 1 FROM inbox WHERE message_id = $1", late.message_id))

    await eventually(handled)
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "50.00"
    assert await ledger(payments_db, order_id) == [("FAILED", "PAYMENT_TIMEOUT")]


@pytest.mark.usefixtures("short_deadline")
async def test_a_dead_lettered_command_leaves_its_order_to_the_deadline_which_closes_it_once(
    api: httpx.AsyncClient, payments_db: asyncpg.Pool
) -> None:
    user = f"{BROKEN_USERS}{uuid.uuid4().hex[:10]}"
    await funded_account(api, user, "50.00")

    created = (await api.post("/orders", json={"amount": "20.00"}, headers=as_user(user))).json()

    order = await settled(api, user, created["id"], timeout=30)
    assert (order["status"], order["failure_reason"]) == ("FAILED", "PAYMENT_TIMEOUT")
    assert (await letter_of(payments_db, order_id=uuid.UUID(created["id"])))["type"] == "payment.requested"
    assert await ledger(payments_db, uuid.UUID(created["id"])) == [("FAILED", "PAYMENT_TIMEOUT")]
    assert (await api.get("/accounts/balance", headers=as_user(user))).json()["balance"] == "50.00"


async def test_an_expiry_request_for_a_paid_order_leaves_it_paid(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "50.00")
    created = (await api.post("/orders", json={"amount": "20.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, created["id"])
    order_id = uuid.UUID(created["id"])
    expire = Envelope(PaymentExpireRequested(order_id, user_id, Decimal("20.00")))

    await produce(stack, stack.topics.payment_commands, expire.to_json().encode(), user_id)

    async def announced_again() -> bool:
        announcements = await payments_db.fetchval(
            "SELECT count(*) FROM outbox WHERE payload LIKE '%' || $1 || '%' AND payload LIKE '%payment.succeeded%'",
            created["id"],
        )
        return announcements == 2

    await eventually(announced_again)
    assert await ledger(payments_db, order_id) == [("SUCCEEDED", None)]
    assert (await api.get(f"/orders/{order_id}", headers=as_user(user_id))).json()["status"] == "PAID"
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "30.00"


async def test_two_expiry_requests_at_once_decide_the_order_once(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, payments_db: asyncpg.Pool, user_id: str
) -> None:
    order_id = await pending_order(orders_db, user_id, "5.00")
    requests = [Envelope(PaymentExpireRequested(order_id, user_id, Decimal("5.00"))) for _ in range(2)]

    async with producer(stack.broker.bootstrap_servers) as client:
        for partition, request in enumerate(requests):
            await (await client.send(stack.topics.payment_commands, request.to_json().encode(), partition=partition))

    order = await settled(api, user_id, str(order_id))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "PAYMENT_TIMEOUT")

    async def both_handled() -> bool:
        ids = [request.message_id for request in requests]
        return await payments_db.fetchval("SELECT count(*) FROM inbox WHERE message_id = ANY($1)", ids) == 2

    await eventually(both_handled)
    assert await ledger(payments_db, order_id) == [("FAILED", "PAYMENT_TIMEOUT")]
