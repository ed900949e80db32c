"""The consumer loop: at-least-once delivery, effects made idempotent by the handlers, offsets committed only
after the handlers' database transaction committed.

Handlers run inside a transaction the consumer opens. The messages one poll brought, from all its partitions, are
handled together in one transaction, each partition's in their order: one durable commit for the lot instead of one
per message (or per partition), which is what lets a busy consumer keep up (at low load a poll brings one message
and nothing waits for a batch to fill). A handler is given each run of consecutive messages that share it, so it
can apply a run in one statement. If anything in the batch fails, it is rolled back whole and its messages are
handled again one per transaction.

A message that cannot be decoded, or whose type has no handler, is published to ``<topic>.dlq`` with the reason
and committed, so it never blocks its partition. Any other failure (the database is down, a connection dropped)
is retried with backoff without committing: the message is neither skipped nor applied twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from messaging import faults
from messaging.backoff import Backoff
from messaging.context import in_own_context
from messaging.events import Envelope, InvalidMessage
from messaging.topics import dead_letter_topic

log = logging.getLogger("messaging.consumer")

Handler = Callable[[list[Envelope], BaseDBAsyncClient], Awaitable[None]]
"""Applies messages, in their order, within the transaction it is given, and does not commit it."""


@dataclass
class ConsumerStats:
    processed: int = 0
    transactions: int = 0
    dead_lettered: int = 0
    retries: int = 0
    failed_commits: int = 0


@dataclass(frozen=True)
class Message:
    record: ConsumerRecord
    envelope: Envelope
    handler: Handler


class EventConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        handlers: Mapping[str, Handler],
        *,
        batch_size: int = 200,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._handlers = handlers
        self._batch_size = batch_size
        self._after_commit = after_commit
        self.stats = ConsumerStats()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=self._batch_size)
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("fetching failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if not batches:
                continue
            await self._process_in_order([record for records in batches.values() for record in records])
            faults.point("consumer.before_offset_commit")
            await self._commit({partition: records[-1].offset + 1 for partition, records in batches.items()})

    async def _process_in_order(self, records: list[ConsumerRecord]) -> None:
        messages = [message for record in records if (message := await self._decoded(record))]
        if len(messages) > 1 and await self._handled_together(messages):
            return
        for message in messages:
            await self._handle_alone(message)

    async def _decoded(self, record: ConsumerRecord) -> Message | None:
        """The message with its handler, or None once it was dead-lettered."""
        try:
            envelope = Envelope.from_bytes(record.value)
            handler = self._handlers.get(envelope.type)
            if handler is None:
                raise InvalidMessage(f"no handler for event type {envelope.type!r}")
        except InvalidMessage as exc:
            await self._dead_letter(record, str(exc))
            return None
        return Message(record, envelope, handler)

    async def _handled_together(self, messages: list[Message]) -> bool:
        """All of them in one transaction, or (after a rollback) none of them."""
        try:
            await in_own_context(self._apply(messages))
        # One poison message or a database hiccup: the one-by-one path tells them apart and retries what it must.
        except Exception as exc:
            log.info("batch of %d messages rolled back (%s); handling them one at a time", len(messages), exc)
            return False
        self._committed(len(messages))
        return True

    async def _handle_alone(self, message: Message) -> None:
        envelope = message.envelope
        backoff = Backoff()
        while True:
            try:
                await in_own_context(self._apply([message]))
            except InvalidMessage as exc:
                await self._dead_letter(message.record, str(exc))
                return
            # Anything else is treated as transient (database restart, dropped connection): retrying is safe
            # because the handler's effect and its inbox row commit together or not at all.
            except Exception as exc:
                self.stats.retries += 1
                delay = backoff.next()
                log.warning(
                    "message %s (%s) failed: %s; retrying in %.1fs", envelope.message_id, envelope.type, exc, delay
                )
                await asyncio.sleep(delay)
            else:
                self._committed(1)
                return

    @staticmethod
    async def _apply(messages: list[Message]) -> None:
        async with in_transaction() as conn:
            for handler, run in itertools.groupby(messages, key=lambda message: message.handler):
                await handler([message.envelope for message in run], conn)

    def _committed(self, messages: int) -> None:
        self.stats.processed += messages
        self.stats.transactions += 1
        if self._after_commit:
            self._after_commit()

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        backoff = Backoff()
        while True:
            try:
                ack = await self._producer.send(
                    dead_letter_topic(record.topic), record.value, key=record.key, headers=headers
                )
                await ack
                break
            except KafkaError as exc:
                log.warning("dead-lettering %s/%d/%d failed: %s", record.topic, record.partition, record.offset, exc)
                await asyncio.sleep(backoff.next())
        self.stats.dead_lettered += 1
        log.warning("dead-lettered %s/%d/%d: %s", record.topic, record.partition, record.offset, reason)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # The partition moved to another consumer while we worked, or the broker is away. Whoever reads the
            # partition next sees these records again and the inbox turns them into no-ops.
            self.stats.failed_commits += 1
            log.warning("commit of %s failed: %s", offsets, exc)

    async def dead_letter_count(self) -> int:
        """Messages in this consumer's dead-letter topics (all time, not only this process's). A dead-letter
        topic is created with as many partitions as its source topic."""
        partitions = [
            TopicPartition(dead_letter_topic(topic), partition)
            for topic in self._consumer.subscription()
            for partition in self._consumer.partitions_for_topic(topic) or ()
        ]
        if not partitions:
            return 0
        return sum((await self._consumer.end_offsets(partitions)).values())

    async def lag(self) -> dict[str, int]:
        """Messages behind the end of each assigned partition."""
        result = {}
        for partition in self._consumer.assignment():
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                position = await self._consumer.position(partition)
                result[f"{partition.topic}/{partition.partition}"] = max(0, highwater - position)
        return result
