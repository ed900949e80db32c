"""Producing and reading raw Kafka messages in tests, as an outside party (or a buggy peer) would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from messaging.kafka import KafkaSettings, make_producer


@asynccontextmanager
async def producer(bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    client = make_producer(KafkaSettings(bootstrap_servers=bootstrap_servers, client_id="tests"))
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def read_all(bootstrap_servers: str, topic: str, idle_ms: int = 1500) -> list[ConsumerRecord]:
    """Every message in the topic, from the beginning, under a throwaway consumer group."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        while batch := await consumer.getmany(timeout_ms=idle_ms):
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def record_at(bootstrap_servers: str, topic: str, partition: int, offset: int) -> ConsumerRecord:
    """The one record at this partition and offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])
        consumer.seek(where, offset)
        return await consumer.getone()
    finally:
        await consumer.stop()
