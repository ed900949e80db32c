"""Messages that cannot be understood go to the dead-letter topic with their reason and never block a partition."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest

from messaging.events import Envelope, PaymentRequested
from messaging.topics import dead_letter_topic
from stack.local import LocalStack
from tests.helpers import eventually, funded_account
from tests.integration.kafka_tools import producer, read_all

POISON = {
    "malformed JSON": (b'{"message_id": "', "not JSON"),
    "wrong schema": (None, "'amount' must be a string"),
    "unknown type": (None, "unknown event type"),
}


def poison(kind: str, marker: str, user: str) -> bytes:
    valid = json.loads(Envelope(PaymentRequested(uuid.uuid4(), user, Decimal("1.00"))).to_json())
    if kind == "malformed JSON":
        return POISON[kind][0] + marker.encode()
    if kind == "wrong schema":
        return json.dumps(valid | {"amount": 12.5, "marker": marker}).encode()
    return json.dumps(valid | {"type": "payment.refunded", "marker": marker}).encode()


@pytest.mark.parametrize("kind", list(POISON))
async def test_poison_message_is_dead_lettered_and_the_next_one_is_processed(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str, kind: str
) -> None:
    await funded_account(api, user_id, "10.00")
    marker = uuid.uuid4().hex
    after = PaymentRequested(order_id=uuid.uuid4(), user_id=user_id, amount=Decimal("1.00"))
    topic = stack.topics.payment_commands

    async with producer(stack.broker.bootstrap_servers) as client:
        await (await client.send(topic, poison(kind, marker, user_id), key=user_id.encode()))
        await (await client.send(topic, Envelope(after).to_json().encode(), key=user_id.encode()))

    async def paid() -> bool:
        return await payments_db.fetchval("SELECT status FROM payments WHERE order_id = $1", after.order_id)

    assert await eventually(paid) == "SUCCEEDED"
    dead = [
        r
        for r in await read_all(stack.broker.bootstrap_servers, dead_letter_topic(topic))
        if marker.encode() in r.value
    ]
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert POISON[kind][1] in headers["dlq.reason"].decode()
    assert headers["dlq.source"].decode().startswith(f"{topic}/")
