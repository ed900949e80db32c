"""Money moves once per order however often a payment command arrives, on the real stack."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
import httpx

from messaging.events import Envelope, PaymentRequested
from stack.local import LocalStack
from tests.helpers import as_user, eventually, funded_account, settled
from tests.integration.kafka_tools import producer, read_all


async def send(stack: LocalStack, *envelopes: Envelope) -> None:
    async with producer(stack.broker.bootstrap_servers) as client:
        for envelope in envelopes:
            key = envelope.event.user_id.encode()
            await (await client.send(stack.topics.payment_commands, envelope.to_json().encode(), key=key))


async def decided(payments_db: asyncpg.Pool, order_id: uuid.UUID) -> str:
    async def check() -> str | None:
        return await payments_db.fetchval("SELECT status FROM payments WHERE order_id = $1", order_id)

    return await eventually(check)


async def balance(payments_db: asyncpg.Pool, user: str) -> Decimal:
    return await payments_db.fetchval("SELECT balance FROM accounts WHERE user_id = $1", user)


async def drained(stack: LocalStack, payments_db: asyncpg.Pool, user: str) -> None:
    """A sentinel command behind the others on the same key (so the same partition): once it is decided,
    every command sent before it has been handled."""
    sentinel = PaymentRequested(order_id=uuid.uuid4(), user_id=user, amount=Decimal("0.01"))
    await send(stack, Envelope(sentinel))
    await decided(payments_db, sentinel.order_id)


async def test_the_same_command_delivered_twice_debits_once(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    command = Envelope(PaymentRequested(order_id=uuid.uuid4(), user_id=user_id, amount=Decimal("30.00")))

    await send(stack, command, command)
    await drained(stack, payments_db, user_id)

    assert await decided(payments_db, command.event.order_id) == "SUCCEEDED"
    assert await balance(payments_db, user_id) == Decimal("69.99")


async def test_a_second_command_for_a_paid_order_under_a_new_id_debits_once(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    command = PaymentRequested(order_id=uuid.uuid4(), user_id=user_id, amount=Decimal("30.00"))

    await send(stack, Envelope(command), Envelope(command), Envelope(command))
    await drained(stack, payments_db, user_id)

    assert await payments_db.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", command.order_id) == 1
    assert await balance(payments_db, user_id) == Decimal("69.99")


async def test_a_refused_order_stays_refused_when_its_command_comes_again_after_a_deposit(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    command = PaymentRequested(order_id=uuid.uuid4(), user_id=user_id, amount=Decimal("30.00"))
    await send(stack, Envelope(command))
    await drained(stack, payments_db, user_id)

    await api.post("/accounts/deposit", json={"amount": "50.00"}, headers=as_user(user_id))
    await send(stack, Envelope(command))
    await drained(stack, payments_db, user_id)

    assert await decided(payments_db, command.order_id) == "FAILED"
    assert await balance(payments_db, user_id) == Decimal("59.98")
    rows = await payments_db.fetch("SELECT payload FROM outbox WHERE key = $1 ORDER BY id", user_id)
    events = [json.loads(row["payload"]) for row in rows]
    announced = [event["type"] for event in events if event["order_id"] == str(command.order_id)]
    assert announced == ["payment.failed", "payment.failed"], "each command is answered, and the same way"


async def test_a_relay_killed_after_the_broker_ack_republishes_and_still_debits_once(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    orders = next(p for p in stack.processes if p.name.startswith("orders"))
    stack.stop_process(orders)
    crashing = stack.spawn_service("orders", env={"GOZON_FAULT_POINTS": "relay.after_ack=1"})
    stack.wait_healthy()

    created = await api.post("/orders", json={"amount": "40.00"}, headers=as_user(user_id))
    crashing.popen.wait(30)
    stack.processes.remove(crashing)
    stack.spawn_service("orders")
    stack.wait_healthy()

    order = await settled(api, user_id, created.json()["id"])
    assert crashing.popen.returncode == -9
    assert order["status"] == "PAID"
    assert await balance(payments_db, user_id) == Decimal("60.00")
    commands = await read_all(stack.broker.bootstrap_servers, stack.topics.payment_commands)
    copies = [r for r in commands if created.json()["id"].encode() in r.value]
    assert len(copies) == 2, "the relay should have published the command again after its crash"


async def test_results_published_while_orders_is_down_settle_when_it_is_back(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    payments = next(p for p in stack.processes if p.name.startswith("payments"))
    stack.stop_process(payments)
    created = [
        (await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))).json()
        for amount in ("60.00", "60.00")
    ]

    async def commands_published() -> bool:
        return not await orders_db.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND key = $1", user_id
        )

    await eventually(commands_published)
    orders = next(p for p in stack.processes if p.name.startswith("orders"))
    stack.stop_process(orders)
    stack.spawn_service("payments")
    stack.wait_healthy()
    for order in created:
        await decided(payments_db, uuid.UUID(order["id"]))

    stack.spawn_service("orders")
    stack.wait_healthy()

    finals = [await settled(api, user_id, order["id"]) for order in created]
    assert [o["status"] for o in finals] == ["PAID", "FAILED"]
    assert finals[1]["failure_reason"] == "INSUFFICIENT_FUNDS"
