"""Starts and stops a service's messaging with the app: the producer, the outbox relay, the LISTEN connection
that wakes it, and the consumers. Kafka or PostgreSQL being down at start is waited out, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from messaging.backoff import Backoff
from messaging.consumer import EventConsumer, Handler
from messaging.inbox import InboxMessage, purge_older_than
from messaging.kafka import KafkaSettings, check_consumer_config, check_producer_config, make_consumer, make_producer
from messaging.notifications import Callback, PgListener
from messaging.outbox import DATABASE_ERRORS, NOTIFY_CHANNEL, OutboxMessage, OutboxRelay

log = logging.getLogger("messaging.runtime")

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)
# Part of a SIGTERM's budget (servicekit.service_app.SHUTDOWN_GRACE_SECONDS).
STOP_TIMEOUT = 3.0


@dataclass(frozen=True)
class Subscription:
    topic: str
    group_id: str
    handlers: Mapping[str, Handler]
    publishes: bool = False
    """Its handlers write events to the outbox: each committed transaction is announced to the relay."""


class Messaging:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        dsn: str,
        outbox: type[OutboxMessage],
        subscriptions: list[Subscription],
        inbox: type[InboxMessage] | None = None,
        relay_batch: int = 200,
        retention_seconds: float = 7 * 86400,
        channels: Mapping[str, Callback] | None = None,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        check_producer_config(kafka.producer_config())
        for subscription in subscriptions:
            check_consumer_config(kafka.consumer_config(subscription.group_id))
        self._kafka = kafka
        self._subscriptions = subscriptions
        self._inbox = inbox
        self._retention_seconds = retention_seconds
        self.relay = OutboxRelay(outbox, batch_size=relay_batch)
        # One LISTEN connection per instance serves the relay and whatever else the service listens for.
        self.listener = PgListener(
            dsn, {NOTIFY_CHANNEL: self.relay.wake, **(channels or {})}, on_reconnect=self._catch_up
        )
        self._on_reconnect = on_reconnect
        self.consumers: list[EventConsumer] = []
        self._task: asyncio.Task[None] | None = None

    def announce(self) -> None:
        """Call after a transaction that wrote outbox rows committed: its events are published now, not at the
        relay's next poll."""
        self.relay.announce()

    async def _catch_up(self) -> None:
        self.relay.wake()
        if self._on_reconnect:
            await self._on_reconnect()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="messaging")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and self.relay.producer is not None

    async def _run(self) -> None:
        """The LISTEN connection and housekeeping need only PostgreSQL, so they run even while Kafka is away."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.listener.run())
                tasks.create_task(self.relay.run_announcer())
                tasks.create_task(self._housekeeping())
                tasks.create_task(self._publish_and_consume())
        except Exception:
            log.exception("messaging stopped unexpectedly")
            raise
        finally:
            log.info("messaging stopped")

    async def _publish_and_consume(self) -> None:
        producer = await started(lambda: make_producer(self._kafka))
        kafka_consumers: list[AIOKafkaConsumer] = []
        try:
            for subscription in self._subscriptions:
                consumer = await started(lambda s=subscription: make_consumer(self._kafka, s.topic, s.group_id))
                kafka_consumers.append(consumer)
                after_commit = self.relay.announce if subscription.publishes else None
                self.consumers.append(
                    EventConsumer(consumer, producer, subscription.handlers, after_commit=after_commit)
                )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.relay.run(producer))
                for consumer in self.consumers:
                    tasks.create_task(consumer.run())
        finally:
            await asyncio.gather(*(stopped(client) for client in (*kafka_consumers, producer)))

    async def _housekeeping(self, interval: float = 60.0) -> None:
        """Retention: published outbox rows and old inbox rows go, in bounded batches, once a minute."""
        while True:
            try:
                deleted = await self.relay.delete_published(self._retention_seconds)
                if self._inbox:
                    deleted += await purge_older_than(self._inbox, self._retention_seconds)
                if deleted:
                    log.info("retention removed %d outbox/inbox rows", deleted)
            except DATABASE_ERRORS as exc:
                log.warning("retention cleanup failed: %s", exc)
            await asyncio.sleep(interval)

    async def state(self) -> dict[str, Any]:
        lag: dict[str, int] = {}
        dead_letters = 0
        for consumer in self.consumers:
            lag |= await consumer.lag()
            dead_letters += await consumer.dead_letter_count()
        return {
            "running": self.running,
            "listening": self.listener.connected.is_set(),
            "outbox": await self.relay.backlog() | self.relay.stats.as_dict(),
            "consumers": [vars(consumer.stats) for consumer in self.consumers],
            "consumer_lag": lag,
            "dead_letters": dead_letters,
        }


async def started(factory: Callable[[], Client]) -> Client:
    """A started Kafka client, retrying with backoff while the broker is unreachable."""
    backoff = Backoff()
    while True:
        client = factory()
        try:
            await client.start()
            return client
        except asyncio.CancelledError:
            await client.stop()
            raise
        except (KafkaError, OSError) as exc:
            with contextlib.suppress(Exception):
                await client.stop()
            delay = backoff.next()
            log.warning("Kafka unreachable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)


async def stopped(client: AIOKafkaProducer | AIOKafkaConsumer, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a Kafka client, but give up after ``timeout``. With the broker away, a producer's stop waits for its
    unacknowledged sends without end, and the process would outlive its supervisor's patience. Giving up loses
    nothing: an outbox row is marked only after its ack, so the next relay publishes it again."""
    try:
        async with asyncio.timeout(timeout):
            await client.stop()
    except TimeoutError:
        log.warning("%s did not stop within %.0fs (is the broker away?); leaving it", type(client).__name__, timeout)
