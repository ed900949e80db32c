"""The consumer loop: at-least-once delivery, effects made idempotent by the handlers, offsets committed only
after the handlers' database transaction committed.

Handlers run inside a transaction the consumer opens. The messages one poll brought, from all its partitions, are
handled together in one transaction, each partition's in their order: one durable commit for the lot instead of one
per message (or per partition), which is what lets a busy consumer keep up (at low load a poll brings one message
and nothing waits for a batch to fill). A handler is given each run of consecutive messages that share it, so it
can apply a run in one statement. If anything in the batch fails, it is rolled back whole and its messages are
handled again one per transaction.

What happens to a message that cannot be applied depends on why (``messaging.transient``):

- it is invalid (it does not decode, breaks a value rule, has no handler) or its handler rejects it (it claims
  something the service knows to be false): it becomes a dead letter at once, in the same transaction as the
  poll's other effects;
- the database or Kafka is away, or the database asks for a retry: the message is retried with backoff, for as long
  as it takes, without committing: it is neither skipped nor applied twice;
- anything else (a value the database refuses, a bug): it is set aside for a bounded number of retries
  (``messaging.retries``), and the consumer goes on with the messages behind it, of its key too. Each message is
  one order's, and orders are independent, so a later one must not wait for an earlier one that may never apply.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from tortoise.transactions import in_transaction

from messaging import after_commit, faults, metrics
from messaging.after_commit import Deferred
from messaging.backoff import Backoff
from messaging.context import in_own_context
from messaging.dead_letters import Delivery, Failure, Letter
from messaging.events import Envelope, InvalidMessage
from messaging.retries import DueRetry, Failures
from messaging.transient import is_transient
from messaging.unit_of_work import Transactions, UnitOfWork

log = logging.getLogger("messaging.consumer")


@dataclass(frozen=True)
class Rejected:
    """A message its handler refuses to apply, and why: it becomes a dead letter, never retried."""

    envelope: Envelope
    reason: str


Handler = Callable[[list[Envelope], UnitOfWork], Awaitable[list[Rejected]]]
"""Applies messages, in their order, within the transaction it is given, and does not commit it; returns the ones
it rejected (their effects are not applied)."""


@dataclass
class ConsumerStats:
    processed: int = 0
    transactions: int = 0
    dead_lettered: int = 0
    retries: int = 0
    """Transient failures retried in place."""
    set_aside: int = 0
    """Messages handed to the retry worker."""
    failed_commits: int = 0


@dataclass(frozen=True)
class Message:
    delivery: Delivery
    envelope: Envelope
    handler: Handler


Decoded = Message | Letter
"""A message to hand to its handler, or the dead letter an invalid one becomes."""


@dataclass(frozen=True)
class Attempt:
    """How a retry of a set-aside message ended."""

    applied: bool
    letters: int
    """Dead letters it made: the message itself once its attempts are spent, or one its handler rejected."""


class Dispatcher:
    """One topic's handlers: decodes a delivery, applies messages in a transaction, and records the dead letters."""

    def __init__(self, handlers: Mapping[str, Handler], failures: Failures) -> None:
        self.handlers = handlers
        self.failures = failures

    def decode(self, delivery: Delivery, attempt: int = 1) -> Decoded:
        try:
            envelope = Envelope.from_bytes(delivery.value)
            handler = self.handlers.get(envelope.type)
            if handler is None:
                raise InvalidMessage(f"no handler for event type {envelope.type!r}")
        except InvalidMessage as exc:
            now = _now()
            return Letter(delivery, Failure.of(exc), attempt, now, now)
        return Message(delivery, envelope, handler)

    async def apply(self, work: UnitOfWork, items: list[Decoded], attempt: int = 1) -> int:
        """Handle the messages and record the letters (invalid and rejected ones) in the unit of work; returns how
        many letters are new."""
        messages = [item for item in items if isinstance(item, Message)]
        letters = [item for item in items if isinstance(item, Letter)]
        for handler, group in itertools.groupby(messages, key=lambda message: message.handler):
            run = list(group)
            for message in run:
                faults.before_handling(message.envelope.type, getattr(message.envelope.event, "user_id", None), attempt)
            rejected = {id(rejection.envelope): rejection.reason for rejection in await handler(_envelopes(run), work)}
            now = _now()
            letters += [
                Letter(message.delivery, Failure(reason, "Rejected", reason), attempt, now, now)
                for message in run
                if (reason := rejected.get(id(message.envelope))) is not None
            ]
        return await self.failures.dead_letters.add(work.conn, letters) if letters else 0


class EventConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        dispatcher: Dispatcher,
        *,
        service: str,
        transactions: Transactions,
        batch_size: int = 200,
        after_dead_letter: Callable[[], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._dispatcher = dispatcher
        self._service = service
        self._transactions = transactions
        self._batch_size = batch_size
        self._after_dead_letter = after_dead_letter
        self.stats = ConsumerStats()

    async def run(self) -> None:
        await self._rewind_to_committed()
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
            await self._process([record for records in batches.values() for record in records])
            faults.point("consumer.before_offset_commit")
            await self._commit({partition: records[-1].offset + 1 for partition, records in batches.items()})

    async def _rewind_to_committed(self) -> None:
        """A loop restarted after it crashed may have fetched past what it committed: start again from the committed
        offsets, so nothing it fetched and did not handle is skipped."""
        backoff = Backoff()
        while True:
            try:
                for partition in self._consumer.assignment():
                    committed = await self._consumer.committed(partition)
                    if committed is None:
                        await self._consumer.seek_to_beginning(partition)
                    else:
                        self._consumer.seek(partition, committed)
                return
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("reading committed offsets failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _process(self, records: list[ConsumerRecord]) -> None:
        items = [self._dispatcher.decode(Delivery.of(record)) for record in records]
        if await self._handled_together(items):
            return
        for item in items:
            await self._handle_alone(item)

    async def _handled_together(self, items: list[Decoded]) -> bool:
        """All of them in one transaction, or (after a rollback) none of them."""
        try:
            await self._apply(items)
        # One poison message or a database hiccup: the one-by-one path tells them apart.
        except Exception as exc:
            if len(items) > 1:
                log.info("batch of %d messages rolled back (%s); handling them one at a time", len(items), exc)
            return False
        self._committed(items)
        return True

    async def _handle_alone(self, item: Decoded) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._apply([item])
            except Exception as exc:
                if not is_transient(exc) and isinstance(item, Message) and await self._set_aside(item, exc, backoff):
                    return
                self.stats.retries += 1
                metrics.MESSAGES_RETRIED.labels(self._service, item.delivery.topic).inc()
                delay = backoff.next()
                log.warning("message at %s failed: %s; retrying in %.1fs", item.delivery.source, exc, delay)
                await asyncio.sleep(delay)
            else:
                self._committed([item])
                return

    async def _set_aside(self, message: Message, exc: Exception, backoff: Backoff) -> bool:
        """Hand the message to the retry worker (or the dead letters, once its attempts are spent); False if that
        failed too (the database went away meanwhile), so that the caller tries the message again."""
        envelope = message.envelope
        try:
            dead = await self._transactions.run(
                lambda work: self._dispatcher.failures.record(work.conn, message.delivery, exc, attempt=1)
            )
        except Exception as record_exc:
            log.warning("setting %s aside failed: %s", message.delivery.source, record_exc)
            return False
        topic = message.delivery.topic
        metrics.MESSAGES_PROCESSED.labels(self._service, topic).inc()
        if dead:
            self.stats.dead_lettered += 1
            metrics.DEAD_LETTERS.labels(self._service, topic).inc()
            if self._after_dead_letter:
                self._after_dead_letter()
        else:
            self.stats.set_aside += 1
            metrics.MESSAGES_RETRIED.labels(self._service, topic).inc()
            log.warning(
                "message %s (%s, order %s) at %s failed: %s: %s; set aside for retry",
                envelope.message_id,
                envelope.type,
                envelope.order_id,
                message.delivery.source,
                type(exc).__name__,
                exc,
            )
        backoff.reset()
        return True

    async def _apply(self, items: list[Decoded]) -> None:
        letters = await self._transactions.run(lambda work: self._dispatcher.apply(work, items))
        if letters:
            self.stats.dead_lettered += letters
            metrics.DEAD_LETTERS.labels(self._service, items[0].delivery.topic).inc(letters)
            if self._after_dead_letter:
                self._after_dead_letter()

    def _committed(self, items: list[Decoded]) -> None:
        self.stats.processed += len(items)
        self.stats.transactions += 1
        for topic, group in itertools.groupby(item.delivery.topic for item in items):
            metrics.MESSAGES_PROCESSED.labels(self._service, topic).inc(len(list(group)))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # The partition moved to another consumer while we worked, or the broker is away. Whoever reads the
            # partition next sees these records again and the inbox turns them into no-ops.
            self.stats.failed_commits += 1
            log.warning("commit of %s failed: %s", offsets, exc)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each assigned partition, by topic and partition."""
        result = {}
        for partition in self._consumer.assignment():
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                position = await self._consumer.position(partition)
                result[(partition.topic, partition.partition)] = max(0, highwater - position)
        return result


class RetryWorker:
    """Tries the messages set aside again when they are due, on whichever instance gets to them first."""

    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher],
        failures: Failures,
        *,
        service: str,
        transactions: Transactions,
        poll_interval: float = 0.25,
        after_dead_letter: Callable[[], None] | None = None,
    ) -> None:
        self._dispatchers = dispatchers
        self._failures = failures
        self._service = service
        self._transactions = transactions
        self._poll_interval = poll_interval
        self._after_dead_letter = after_dead_letter
        self.recovered = 0
        self.dead_lettered = 0

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                retried = await in_own_context(self.retry_one())
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = backoff.next()
                log.warning("retrying a set-aside message failed (%s); again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if not retried:
                await asyncio.sleep(self._poll_interval)

    async def retry_one(self) -> bool:
        """One due message, in one transaction: applied (and its retry forgotten), or its failure recorded. The
        attempt runs in a savepoint, so the retry row stays locked however it ends. False when none was due."""
        with after_commit.collected() as deferred:
            async with in_transaction() as conn:
                due = await self._failures.claim_due(conn)
                if due is None:
                    return False
                work = UnitOfWork(conn)
                outcome = await self._attempt(work, due, deferred)
        self._transactions.committed(work, deferred)
        self._count(due, outcome)
        return True

    async def _attempt(self, work: UnitOfWork, due: DueRetry, deferred: list[Deferred]) -> Attempt:
        attempt = due.attempts + 1
        dispatcher = self._dispatchers.get(due.delivery.topic)
        try:
            if dispatcher is None:
                raise InvalidMessage(f"no consumer here reads {due.delivery.topic}")
            item = dispatcher.decode(due.delivery, attempt)
            if isinstance(item, Letter):
                raise InvalidMessage(item.failure.reason)
            async with work.conn._in_transaction() as savepoint:
                attempted = UnitOfWork(savepoint)
                letters = await dispatcher.apply(attempted, [item], attempt)
                await self._failures.forget(savepoint, due.delivery)
        except Exception as exc:
            if is_transient(exc):
                raise
            deferred.clear()
            dead = await self._failures.record(work.conn, due.delivery, exc, attempt, due.first_failed_at)
            log.warning("retry %d of %s failed: %s: %s", attempt, due.delivery.source, type(exc).__name__, exc)
            return Attempt(applied=False, letters=int(dead))
        log.info("message at %s applied on attempt %d", due.delivery.source, attempt)
        work.wrote_outbox |= attempted.wrote_outbox
        return Attempt(applied=True, letters=letters)

    def _count(self, due: DueRetry, outcome: Attempt) -> None:
        topic = due.delivery.topic
        if outcome.applied:
            self.recovered += 1
        elif not outcome.letters:
            metrics.MESSAGES_RETRIED.labels(self._service, topic).inc()
        if outcome.letters:
            self.dead_lettered += outcome.letters
            metrics.DEAD_LETTERS.labels(self._service, topic).inc(outcome.letters)
            if self._after_dead_letter:
                self._after_dead_letter()


def _envelopes(messages: list[Message]) -> list[Envelope]:
    return [message.envelope for message in messages]


def _now() -> datetime:
    return datetime.now(UTC)
