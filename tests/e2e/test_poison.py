"""Bad messages on the real stack: one never stops money moving, each becomes a dead letter with why, and a
handler that keeps failing is given up on after its attempts.

The session's services fail the handling of two reserved kinds of user on purpose (tests/conftest.py): a *flaky*
user's events fail their first attempts, a *broken* user's commands every attempt.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from messaging.events import Envelope, FailureReason, PaymentFailed, PaymentRequested, PaymentSucceeded
from messaging.topics import dead_letter_topic
from stack.local import LocalStack
from tests.conftest import BROKEN_USERS, FLAKY_USERS
from tests.helpers import as_operator, as_user, eventually, funded_account, settled
from tests.integration.kafka_tools import producer, read_all


async def produce(stack: LocalStack, topic: str, value: bytes, key: str) -> None:
    async with producer(stack.broker.bootstrap_servers) as client:
        await (await client.send(topic, value, key=key.encode()))


async def letter_of(db: asyncpg.Pool, **where: Any) -> asyncpg.Record:
    """The one dead letter matching ``where`` (a column equal to a value), once it is there."""
    column, value = next(iter(where.items()))

    async def found() -> list[asyncpg.Record]:
        return await db.fetch(f"SELECT * FROM dead_letters WHERE {column} = $1", value)

    [letter] = await eventually(found)
    return letter


def event_bytes(event_type: str, **fields: str) -> tuple[bytes, uuid.UUID]:
    """An event as a buggy peer might write it: a valid envelope, whatever fields it is given."""
    message_id = uuid.uuid4()
    envelope = {
        "message_id": str(message_id),
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-25T10:00:00+00:00",
        "order_id": str(uuid.uuid4()),
        "user_id": "someone",
        "amount": "1.00",
    }
    return json.dumps(envelope | fields).encode(), message_id


async def pending_order(orders_db: asyncpg.Pool, user_id: str, amount: str = "5.00") -> uuid.UUID:
    """An order whose payment command was never written: only what the test sends settles it."""
    order_id = uuid.uuid4()
    await orders_db.execute(
        "INSERT INTO orders (id, user_id, amount, status, created_at, updated_at) "
        "VALUES ($1, $2, $3, 'PENDING', now(), now())",
        order_id,
        user_id,
        Decimal(amount),
    )
    return order_id


async def test_one_bad_command_then_twelve_orders_of_other_users_all_settle(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool
) -> None:
    users = [f"u-{uuid.uuid4().hex[:12]}" for _ in range(12)]
    for user in users:
        await funded_account(api, user, "100.00")
    bad, message_id = event_bytes("payment.requested", user_id=users[0], amount="99999999999999.999")

    await produce(stack, stack.topics.payment_commands, bad, users[0])
    created = [(await api.post("/orders", json={"amount": "10.00"}, headers=as_user(user))).json() for user in users]

    finals = await asyncio.gather(
        *(settled(api, user, order["id"], timeout=10) for user, order in zip(users, created, strict=True))
    )
    assert [order["status"] for order in finals] == ["PAID"] * 12
    letter = await letter_of(payments_db, message_id=message_id)
    assert letter["reason"] == "'amount' must be at most 1000000000.00. Got '99999999999999.999'."
    assert (letter["error_class"], letter["attempts"], letter["state"]) == ("InvalidMessage", 1, "PENDING")
    assert bytes(letter["payload"]) == bad

    async def copied() -> list:
        dead = await read_all(stack.broker.bootstrap_servers, dead_letter_topic(stack.topics.payment_commands))
        return [record for record in dead if record.value == bad]

    [copy] = await eventually(copied)
    headers = dict(copy.headers)
    assert headers["dlq.letter"] == str(letter["id"]).encode()
    assert (
        headers["dlq.source"]
        == f"{letter['source_topic']}/{letter['source_partition']}/{letter['source_offset']}".encode()
    )


@pytest.mark.parametrize(
    ("service", "event_type", "fields", "rule"),
    [
        ("payments", "payment.requested", {"amount": "0.00"}, "'amount' must be greater than 0."),
        ("payments", "payment.requested", {"amount": "1.001"}, "'amount' must have at most 2 decimal places."),
        ("payments", "payment.requested", {"amount": "1000000000.01"}, "'amount' must be at most 1000000000.00."),
        ("payments", "payment.requested", {"amount": "1_000"}, "'amount' is not a decimal number."),
        ("payments", "payment.requested", {"user_id": "a" * 65}, "'user_id' must be 1-64 characters"),
        ("payments", "payment.requested", {"order_id": "order-7"}, "'order_id' is not a valid UUID"),
        ("payments", "payment.expire_requested", {"amount": "-1"}, "'amount' must be greater than 0."),
        ("orders", "payment.failed", {"reason": "BAD_LUCK"}, "'reason' is not a valid FailureReason"),
        ("orders", "payment.succeeded", {"user_id": "semi;colon"}, "'user_id' must be 1-64 characters"),
        ("orders", "payment.succeeded", {"amount": 12.5}, "'amount' must be a string"),
    ],
)
async def test_an_event_breaking_a_rule_is_dead_lettered_at_once_with_the_rule(
    stack: LocalStack,
    orders_db: asyncpg.Pool,
    payments_db: asyncpg.Pool,
    service: str,
    event_type: str,
    fields: dict,
    rule: str,
) -> None:
    topic = stack.topics.payment_commands if service == "payments" else stack.topics.payment_results
    bad, message_id = event_bytes(event_type, **fields)

    await produce(stack, topic, bad, "someone")

    letter = await letter_of(payments_db if service == "payments" else orders_db, message_id=message_id)
    assert rule in letter["reason"]
    assert letter["attempts"] == 1


async def test_an_event_of_a_known_type_missing_fields_is_dead_lettered(
    stack: LocalStack, payments_db: asyncpg.Pool
) -> None:
    full, message_id = event_bytes("payment.requested")
    partial = {name: value for name, value in json.loads(full).items() if name != "amount"}

    await produce(stack, stack.topics.payment_commands, json.dumps(partial).encode(), "someone")

    assert (await letter_of(payments_db, message_id=message_id))["reason"] == "payment.requested lacks 'amount'"


async def test_orders_refuses_a_result_for_an_order_it_does_not_have(
    stack: LocalStack, orders_db: asyncpg.Pool, user_id: str
) -> None:
    result = Envelope(PaymentSucceeded(uuid.uuid4(), user_id, Decimal("5.00")))

    await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)

    letter = await letter_of(orders_db, message_id=result.message_id)
    assert (letter["reason"], letter["error_class"]) == (f"order {result.order_id} does not exist", "Rejected")


@pytest.mark.parametrize("differs", ["amount", "user"])
async def test_orders_refuses_a_result_about_other_money_and_applies_the_true_one(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, user_id: str, differs: str
) -> None:
    order_id = await pending_order(orders_db, user_id)
    wrong = (
        PaymentSucceeded(order_id, user_id, Decimal("5.01"))
        if differs == "amount"
        else PaymentFailed(order_id, "someone-else", Decimal("5.00"), FailureReason.INSUFFICIENT_FUNDS)
    )
    right = Envelope(PaymentSucceeded(order_id, user_id, Decimal("5.00")))

    await produce(stack, stack.topics.payment_results, Envelope(wrong).to_json().encode(), user_id)
    letter = await letter_of(orders_db, order_id=order_id)
    assert letter["reason"].startswith(f"order {order_id} is 5.00 for {user_id}, not ")
    assert (await api.get(f"/orders/{order_id}", headers=as_user(user_id))).json()["status"] == "PENDING"

    await produce(stack, stack.topics.payment_results, right.to_json().encode(), user_id)
    assert (await settled(api, user_id, str(order_id)))["status"] == "PAID"


async def test_payments_refuses_a_command_about_other_money_than_its_ledger_holds(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    order = (await api.post("/orders", json={"amount": "10.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, order["id"])
    announced = await payments_db.fetchval(
        "SELECT count(*) FROM outbox WHERE payload LIKE '%' || $1 || '%'", order["id"]
    )
    again = Envelope(PaymentRequested(uuid.UUID(order["id"]), user_id, Decimal("99.00")))

    await produce(stack, stack.topics.payment_commands, again.to_json().encode(), user_id)

    letter = await letter_of(payments_db, message_id=again.message_id)
    assert letter["reason"] == f"order {order['id']} is in the ledger as 10.00 for {user_id}, not 99.00 for {user_id}"
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "90.00"
    assert (
        await payments_db.fetchval("SELECT count(*) FROM outbox WHERE payload LIKE '%' || $1 || '%'", order["id"])
        == announced
    ), "no decision is announced about different money"


async def test_a_handler_failing_its_first_attempts_still_settles_the_order_with_no_dead_letter(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, payments_db: asyncpg.Pool
) -> None:
    user = f"{FLAKY_USERS}{uuid.uuid4().hex[:10]}"
    await funded_account(api, user, "50.00")

    order = (await api.post("/orders", json={"amount": "20.00"}, headers=as_user(user))).json()

    assert (await settled(api, user, order["id"], timeout=30))["status"] == "PAID"
    assert (await api.get("/accounts/balance", headers=as_user(user))).json()["balance"] == "30.00"
    for db in (orders_db, payments_db):
        assert not await db.fetchval("SELECT count(*) FROM dead_letters WHERE order_id = $1", uuid.UUID(order["id"]))
        assert not await db.fetchval(
            "SELECT count(*) FROM message_retries WHERE convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'",
            order["id"],
        )
    recovered = [
        (await api.get(f"/ops/{service}", headers=as_operator())).json()["retries"]["recovered"]
        for service in ("orders", "payments")
    ]
    assert min(recovered) >= 1


async def test_a_handler_that_always_fails_is_given_up_on_after_its_attempts(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool
) -> None:
    user = f"{BROKEN_USERS}{uuid.uuid4().hex[:10]}"
    await funded_account(api, user, "50.00")

    order = (await api.post("/orders", json={"amount": "20.00"}, headers=as_user(user))).json()

    letter = await letter_of(payments_db, order_id=uuid.UUID(order["id"]))
    assert letter["attempts"] == 5
    assert letter["reason"] == "failed 5 times; giving up"
    assert letter["error_class"] == "InjectedFault"
    assert letter["last_failed_at"] > letter["first_failed_at"]
    assert json.loads(letter["payload"])["order_id"] == order["id"]
    assert (await api.get(f"/orders/{order['id']}", headers=as_user(user))).json()["status"] == "PENDING"
    assert (await api.get("/accounts/balance", headers=as_user(user))).json()["balance"] == "50.00"
