"""The platform under everything: per-service databases, and Kafka's delivery guarantees as aiokafka sees them."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from messaging.kafka import KafkaSettings, make_producer
from messaging.runtime import stopped
from stack import kafka
from stack.local import ROOT, LocalStack, free_ports
from tests.integration.kafka_tools import producer

SUPERVISOR_PATIENCE = 15.0
"""How long ``stack.stop_process`` (so ``make run``, the tests, the chaos harness) waits before SIGKILL."""


async def test_each_service_has_its_own_database_and_role(infra: LocalStack) -> None:
    for service, url in infra.database_urls.items():
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == service
            assert await conn.fetchval("SELECT current_user") == service
        finally:
            await conn.close()


@pytest.mark.parametrize(("role", "other"), [("payments", "orders"), ("orders", "payments")])
async def test_one_services_role_cannot_open_the_others_database(infra: LocalStack, role: str, other: str) -> None:
    own_url = infra.database_urls[role]
    foreign_url = own_url.rsplit("/", 1)[0] + f"/{other}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(foreign_url)


async def fresh_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"platform-{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(bootstrap, [topic], partitions)
    return topic


def group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )


async def consume(consumer: AIOKafkaConsumer, idle_ms: int = 1500) -> list:
    records = []
    while batch := await consumer.getmany(timeout_ms=idle_ms):
        for partition_records in batch.values():
            records.extend(partition_records)
        await consumer.commit()
    return records


async def test_a_thousand_keyed_messages_are_read_once_each_in_key_order(infra: LocalStack) -> None:
    bootstrap = infra.broker.bootstrap_servers
    topic = await fresh_topic(bootstrap)
    sent = [(f"user-{i % 17}", f"{i}") for i in range(1000)]
    async with producer(bootstrap) as client:
        acks = [await client.send(topic, value.encode(), key=key.encode()) for key, value in sent]
        for ack in acks:
            await ack
    group = f"g-{uuid.uuid4().hex[:8]}"

    first = group_consumer(bootstrap, topic, group)
    await first.start()
    try:
        records = await consume(first)
        assert len(first.assignment()) == 3
    finally:
        await first.stop()
    again = group_consumer(bootstrap, topic, group)
    await again.start()
    try:
        reread = await consume(again, idle_ms=1000)
    finally:
        await again.stop()

    assert sorted(int(r.value) for r in records) == list(range(1000))
    by_key: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_key[record.key.decode()].append(int(record.value))
    assert all(values == sorted(values) for values in by_key.values())
    assert reread == []


@pytest.fixture
async def own_broker() -> AsyncIterator[kafka.KafkaBroker]:
    """A broker of this test's own, so stopping it disturbs nobody else."""
    root = Path(tempfile.mkdtemp(prefix="gozon-kafka-"))
    port, controller_port = free_ports(2)
    broker = kafka.KafkaBroker(root, kafka.ensure_jars(ROOT / ".data" / "kafka-dist"), port, controller_port)
    broker.start(stdout=subprocess.DEVNULL)
    await kafka.wait_until_ready(broker.bootstrap_servers)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_messages_and_committed_offsets_survive_a_broker_restart(own_broker: kafka.KafkaBroker) -> None:
    bootstrap = own_broker.bootstrap_servers
    topic = await fresh_topic(bootstrap, partitions=1)
    async with producer(bootstrap) as client:
        for i in range(10):
            await (await client.send(topic, f"{i}".encode(), key=b"k"))
    consumer = group_consumer(bootstrap, topic, "durable")
    await consumer.start()
    batch = await consumer.getmany(timeout_ms=5000, max_records=4)
    await consumer.commit({TopicPartition(topic, 0): 4})
    await consumer.stop()
    assert sum(len(records) for records in batch.values()) == 4

    own_broker.stop()
    own_broker.start(stdout=subprocess.DEVNULL)
    await kafka.wait_until_ready(bootstrap)

    resumed = group_consumer(bootstrap, topic, "durable")
    await resumed.start()
    try:
        rest = await consume(resumed)
    finally:
        await resumed.stop()
    assert [int(r.value) for r in rest] == list(range(4, 10))


async def test_a_producer_with_unacknowledged_sends_stops_in_bounded_time_when_the_broker_died(
    own_broker: kafka.KafkaBroker,
) -> None:
    """What a SIGTERM does to an instance whose relay was publishing when the broker went away."""
    bootstrap = own_broker.bootstrap_servers
    topic = await fresh_topic(bootstrap, partitions=1)
    client = make_producer(KafkaSettings(bootstrap_servers=bootstrap, client_id="stopping"))
    await client.start()
    await (await client.send(topic, b"acknowledged"))
    own_broker.kill()
    pending = await client.send(topic, b"never acknowledged")

    # Fails the test (TimeoutError) if the stop hangs past the point where a supervisor would SIGKILL.
    await asyncio.wait_for(stopped(client, timeout=2.0), timeout=SUPERVISOR_PATIENCE)

    assert not pending.done() or pending.exception() is not None
