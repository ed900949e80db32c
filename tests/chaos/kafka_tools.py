"""What the harness does with Kafka directly: read whole topics, look at consumer groups, rewind a group, and
produce the messages a fault delivers (copies, concurrent pairs, poison)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from messaging.topics import Topics

READ_BATCH = 5_000
PARTITIONS = Topics.from_env(os.environ).partitions
"""How many partitions every topic of the stack has, dead-letter twins included (LocalStack creates them so)."""


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class GroupState:
    state: str
    members: dict[str, tuple[int, ...]]
    """Member id -> the partitions it holds of the group's topic."""


@contextlib.asynccontextmanager
async def producer(bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=True, acks="all")
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def admin(bootstrap_servers: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5_000)
    try:
        await client.start()
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def reader(bootstrap_servers: str, group_id: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer that subscribes to nothing: partitions are assigned by hand."""
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


async def read_topic(bootstrap_servers: str, topic: str, last: int | None = None) -> list[Record]:
    """The records of the topic up to its current end, partition by partition in offset order: all of them (what
    a brand-new consumer group would read), or the ``last`` few of each partition."""
    async with reader(bootstrap_servers) as consumer:
        partitions = _partitions(topic)
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        for tp in partitions:
            start = beginnings[tp] if last is None else max(beginnings[tp], ends[tp] - last)
            records += await _read_range(consumer, tp, start, ends[tp])
        return records


async def _read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int) -> list[Record]:
    records: list[Record] = []
    consumer.seek(tp, start)
    while start < end:
        batch = (await consumer.getmany(tp, timeout_ms=1_000, max_records=READ_BATCH)).get(tp, [])
        records += [
            Record(tp.partition, r.offset, r.key.decode() if r.key else None, r.value, tuple(r.headers or ()))
            for r in batch
        ]
        if batch:
            start = batch[-1].offset + 1
    return [record for record in records if record.offset < end]


def _partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for partition in range(PARTITIONS)]


async def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    async with reader(bootstrap_servers) as consumer:
        partitions = _partitions(topic)
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}


async def committed_offsets(client: AIOKafkaAdminClient, group_id: str, topic: str) -> dict[int, int]:
    offsets = await client.list_consumer_group_offsets(group_id)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def group_lag(bootstrap_servers: str, group_id: str, topic: str) -> int:
    """Messages of the topic the group has not committed yet."""
    async with admin(bootstrap_servers) as client:
        committed = await committed_offsets(client, group_id, topic)
    ends = await end_offsets(bootstrap_servers, topic)
    return sum(max(0, end - committed.get(partition, 0)) for partition, end in ends.items())


async def describe_group(client: AIOKafkaAdminClient, group_id: str, topic: str) -> GroupState:
    [response] = await client.describe_consumer_groups([group_id])
    _error, _group, state, _protocol_type, _protocol, members = response.groups[0]
    held = {}
    for member_id, _client_id, _host, _metadata, assignment in members:
        partitions: tuple[int, ...] = ()
        if assignment:
            decoded = ConsumerProtocolMemberAssignment.decode(assignment)
            partitions = tuple(sorted(tp.partition for tp in decoded.partitions() if tp.topic == topic))
        held[member_id] = partitions
    return GroupState(state, held)


async def wait_group_empty(bootstrap_servers: str, group_id: str, topic: str, timeout: float = 60.0) -> None:
    """Until no consumer is a member of the group (needed before its offsets can be rewritten)."""
    deadline = time.monotonic() + timeout
    async with admin(bootstrap_servers) as client:
        while (await describe_group(client, group_id, topic)).state not in ("Empty", "Dead"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer group {group_id} still has members after {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def rewind_group(bootstrap_servers: str, group_id: str, topic: str) -> int:
    """Commit the beginning of every partition for the group (which must have no members); returns how many
    messages the group will read again."""
    async with reader(bootstrap_servers, group_id=group_id) as consumer:
        partitions = _partitions(topic)
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(beginnings)
        return sum(ends[tp] - beginnings[tp] for tp in partitions)
