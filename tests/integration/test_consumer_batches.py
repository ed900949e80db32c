"""The consumer applies a partition's batch in one transaction (its handler given the whole run at once), and a batch
that fails is redone one message at a time: every message still takes effect exactly once and in order, and only
the poison one is dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from messaging.consumer import EventConsumer, Handler
from messaging.events import Envelope, InvalidMessage, PaymentRequested
from messaging.kafka import KafkaSettings, make_consumer, make_producer
from messaging.topics import dead_letter_topic
from stack import kafka
from stack.local import LocalStack
from tests.helpers import eventually
from tests.integration.kafka_tools import producer, read_all

pytestmark = pytest.mark.usefixtures("orders_orm")

MESSAGES = 20


@pytest.fixture
async def effects() -> AsyncIterator[str]:
    """A scratch table the test handlers write to: one row per application, so a double one shows."""
    table = f"effects_{uuid.uuid4().hex[:8]}"
    db = connections.get("default")
    await db.execute_script(f"CREATE TABLE {table} (seq bigserial, message_id uuid NOT NULL)")
    yield table
    await db.execute_script(f"DROP TABLE {table}")


async def new_topic(infra: LocalStack, partitions: int) -> str:
    name = f"batches-{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(infra.broker.bootstrap_servers, [name, dead_letter_topic(name)], partitions=partitions)
    return name


@pytest.fixture
async def topic(infra: LocalStack) -> str:
    return await new_topic(infra, partitions=1)


async def publish(bootstrap_servers: str, topic: str, users: int = 1) -> list[Envelope]:
    """Every message is on its partition before the consumer starts, so its first poll brings them together."""
    owners = [f"batch-user-{n % users}" for n in range(MESSAGES)]
    envelopes = [Envelope(PaymentRequested(uuid.uuid4(), owner, Decimal("1.00"))) for owner in owners]
    async with producer(bootstrap_servers) as client:
        for owner, envelope in zip(owners, envelopes, strict=True):
            await (await client.send(topic, envelope.to_json().encode(), key=owner.encode()))
    return envelopes


async def consume_until(
    infra: LocalStack, topic: str, handler: Handler, done: Callable[[], Awaitable[bool]]
) -> EventConsumer:
    settings = KafkaSettings(bootstrap_servers=infra.broker.bootstrap_servers, client_id="batch-tests")
    kafka_consumer = make_consumer(settings, topic, f"group-{topic}")
    kafka_producer = make_producer(settings)
    await kafka_consumer.start()
    await kafka_producer.start()
    consumer = EventConsumer(kafka_consumer, kafka_producer, {PaymentRequested.TYPE: handler})
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(done)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kafka_consumer.stop()
        await kafka_producer.stop()
    return consumer


def recording(table: str) -> Handler:
    async def record(envelopes: list[Envelope], conn: BaseDBAsyncClient) -> None:
        for envelope in envelopes:
            await conn.execute_query(f"INSERT INTO {table} (message_id) VALUES ($1)", [envelope.message_id])

    return record


async def applied(table: str) -> list[uuid.UUID]:
    _, rows = await connections.get("default").execute_query(f"SELECT message_id FROM {table} ORDER BY seq")
    return [row["message_id"] for row in rows]


async def test_a_partitions_batch_commits_once(infra: LocalStack, topic: str, effects: str) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    record, runs = recording(effects), []

    async def handler(run: list[Envelope], conn: BaseDBAsyncClient) -> None:
        runs.append(len(run))
        await record(run, conn)

    consumer = await consume_until(infra, topic, handler, all_applied)

    assert await applied(effects) == [envelope.message_id for envelope in envelopes]
    assert consumer.stats.processed == MESSAGES
    assert consumer.stats.transactions < MESSAGES
    # The handler got the batch's messages as one run, so it could apply them in one statement.
    assert len(runs) == consumer.stats.transactions


async def test_a_poll_across_partitions_commits_once(infra: LocalStack, effects: str) -> None:
    partitions = 3
    topic = await new_topic(infra, partitions)
    envelopes = await publish(infra.broker.bootstrap_servers, topic, users=12)

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    consumer = await consume_until(infra, topic, recording(effects), all_applied)

    assert sorted(await applied(effects)) == sorted(envelope.message_id for envelope in envelopes)
    # One transaction a partition would be at least three.
    assert consumer.stats.transactions < partitions


async def test_a_failed_batch_is_redone_one_message_at_a_time(infra: LocalStack, topic: str, effects: str) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)
    poison, flaky = envelopes[5].message_id, envelopes[10].message_id
    failures = {flaky: 1}
    record = recording(effects)

    async def handler(envelopes: list[Envelope], conn: BaseDBAsyncClient) -> None:
        await record(envelopes, conn)
        for envelope in envelopes:
            if envelope.message_id == poison:
                raise InvalidMessage("the test's poison message")
            if failures.get(envelope.message_id):
                failures[envelope.message_id] -= 1
                raise ConnectionResetError("the database went away mid-transaction")

    async def rest_applied() -> bool:
        return len(await applied(effects)) == MESSAGES - 1

    consumer = await consume_until(infra, topic, handler, rest_applied)

    assert await applied(effects) == [e.message_id for e in envelopes if e.message_id != poison]
    dead = await read_all(infra.broker.bootstrap_servers, dead_letter_topic(topic))
    assert [Envelope.from_bytes(record.value).message_id for record in dead] == [poison]
    assert dict(dead[0].headers)["dlq.reason"] == b"the test's poison message"
    assert consumer.stats.dead_lettered == 1
    assert consumer.stats.retries >= 1
