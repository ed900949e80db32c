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
from stack.postgres import ServiceDatabase
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


REFUSED_TO_THE_SERVICE = {
    "orders": [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE orders ADD COLUMN intruder int",
        "DROP TABLE outbox",
        "CREATE INDEX intruder ON orders (amount)",
        "DELETE FROM operator_actions",
        "TRUNCATE orders",
        "SELECT * FROM schema_migrations",
        "CREATE ROLE intruder",
    ],
    "payments": [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE accounts DROP COLUMN balance",
        "DELETE FROM payments",
        "DELETE FROM deposits",
        "TRUNCATE deposits",
        "DELETE FROM operator_actions",
        "UPDATE schema_migrations SET version = 'x'",
        "CREATE DATABASE intruder",
    ],
}


@pytest.mark.parametrize(
    ("service", "statement"),
    [(service, statement) for service, statements in REFUSED_TO_THE_SERVICE.items() for statement in statements],
)
async def test_a_services_role_can_change_no_schema_and_delete_no_money_record(
    infra: LocalStack, service: str, statement: str
) -> None:
    conn = await asyncpg.connect(infra.database_urls[service])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.mark.parametrize("service", ["orders", "payments"])
async def test_the_service_role_writes_rows_and_the_owner_role_owns_the_schema(infra: LocalStack, service: str) -> None:
    conn = await asyncpg.connect(infra.database_urls[service])
    try:
        async with conn.transaction():
            deleted = await conn.execute("DELETE FROM outbox WHERE false")
            owners = await conn.fetch(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                "UNION SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()"
            )
            superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()

    assert deleted == "DELETE 0"
    assert [row[0] for row in owners] == [f"{service}_owner"]
    assert superuser is False


async def test_a_database_its_service_role_owned_is_handed_over_to_the_owner_role(infra: LocalStack) -> None:
    """What `make run` made before the owner roles existed keeps its data and changes hands."""
    name = f"handover_{uuid.uuid4().hex[:8]}"
    service_url = f"postgres://{name}:pw@127.0.0.1:{infra.ports.postgres}/{name}"
    owner_url = f"postgres://{name}_owner:pw2@127.0.0.1:{infra.ports.postgres}/{name}"
    await infra.postgres.ensure_service_databases([ServiceDatabase.from_urls(service_url, owner_url=service_url)])
    conn = await asyncpg.connect(service_url)
    try:
        await conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)")
    finally:
        await conn.close()

    await infra.postgres.ensure_service_databases([ServiceDatabase.from_urls(service_url, owner_url)])

    admin = await asyncpg.connect(infra.postgres.admin_dsn.rsplit("/", 1)[0] + f"/{name}")
    try:
        owners = await admin.fetchrow(
            "SELECT (SELECT tableowner FROM pg_tables WHERE tablename = 'kept') AS table_owner, "
            "(SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()) AS database_owner, "
            "(SELECT count(*) FROM kept) AS rows"
        )
    finally:
        await admin.close()
    assert dict(owners) == {"table_owner": f"{name}_owner", "database_owner": f"{name}_owner", "rows": 1}


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
