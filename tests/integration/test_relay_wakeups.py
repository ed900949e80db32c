"""A committed event is published as soon as its writer announces it, by this instance's relay or, through one
NOTIFY, by another instance's: not at the relay's next poll. The relays here poll once an hour."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from tortoise import connections

from messaging.events import Envelope, PaymentRequested
from messaging.kafka import KafkaSettings, make_producer
from messaging.notifications import PgListener
from messaging.outbox import NOTIFY_CHANNEL, OutboxMessage, OutboxRelay, enqueue
from messaging.unit_of_work import Transactions
from stack import kafka
from stack.local import LocalStack
from tests.helpers import eventually

pytestmark = pytest.mark.usefixtures("orders_orm")

HOUR = 3600.0


class ScratchOutbox(OutboxMessage):
    """A table of its own, so the orders service's relays (which share the database) cannot publish the rows."""

    class Meta:
        table = "scratch_outbox"


@pytest.fixture
async def scratch_outbox(orders_owner_db: asyncpg.Pool) -> AsyncIterator[None]:
    await orders_owner_db.execute("CREATE TABLE scratch_outbox (LIKE outbox INCLUDING ALL)")
    yield
    await orders_owner_db.execute("DROP TABLE scratch_outbox")


@pytest.fixture
async def producer(infra: LocalStack) -> AsyncIterator[AIOKafkaProducer]:
    client = make_producer(KafkaSettings(bootstrap_servers=infra.broker.bootstrap_servers, client_id="wake-tests"))
    await client.start()
    yield client
    await client.stop()


@pytest.fixture
async def topic(infra: LocalStack) -> str:
    name = f"wakeups-{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(infra.broker.bootstrap_servers, [name], partitions=1)
    return name


@contextlib.asynccontextmanager
async def running(*coroutines: object) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]  # type: ignore[arg-type]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def write_event(transactions: Transactions, topic: str) -> None:
    """An event written in a unit of work, which wakes the relay it was given once it committed."""
    command = PaymentRequested(order_id=uuid.uuid4(), user_id="wake-user", amount=Decimal("1.00"))
    await transactions.run(lambda work: enqueue(ScratchOutbox, work, topic, "wake-user", Envelope(command)))


async def all_published() -> bool:
    _, rows = await connections.get("default").execute_query(
        "SELECT count(*) AS waiting FROM scratch_outbox WHERE published_at IS NULL"
    )
    return rows[0]["waiting"] == 0


class CountingRelay(OutboxRelay):
    """A relay that counts the passes it finished, so a test can tell when its first one is behind it."""

    passes = 0

    async def publish_batch(self) -> int:
        published = await super().publish_batch()
        self.passes += 1
        return published


async def first_pass_done(relay: CountingRelay) -> None:
    """A relay publishes whatever is waiting when it starts; only after that does it wait for a wake-up. An event
    written before that first pass finished could be published by it, wake-up or not, and prove nothing."""

    async def passed() -> bool:
        return relay.passes >= 1

    await eventually(passed, timeout=10)
    assert relay.stats.published == 0


@pytest.mark.usefixtures("scratch_outbox")
async def test_the_writers_own_relay_publishes_at_once(producer: AIOKafkaProducer, topic: str) -> None:
    relay = CountingRelay(ScratchOutbox, service="scratch", poll_interval=HOUR)
    async with running(relay.run(producer), relay.run_announcer()):
        await first_pass_done(relay)
        await write_event(Transactions(relay.announce), topic)
        assert await eventually(all_published, timeout=10)
    assert relay.stats.published == 1


@pytest.mark.usefixtures("scratch_outbox")
async def test_another_instances_relay_is_woken_by_the_announcement(
    infra: LocalStack, producer: AIOKafkaProducer, topic: str
) -> None:
    writer, other = (CountingRelay(ScratchOutbox, service="scratch", poll_interval=HOUR) for _ in range(2))
    listener = PgListener(infra.database_urls["orders"], {NOTIFY_CHANNEL: other.wake})
    async with running(listener.run(), other.run(producer), writer.run_announcer()):
        await listener.connected.wait()
        await first_pass_done(other)
        await write_event(Transactions(writer.announce), topic)
        assert await eventually(all_published, timeout=10)
    assert other.stats.published == 1
