"""Starts and stops a service's messaging with the app: the producer, the outbox relay, the LISTEN connection
that wakes it, the consumers, the retry worker, the dead-letter relay and the retention cleanup, each a supervised
loop (``messaging.supervisor``). Kafka or PostgreSQL being down at start is waited out, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from tortoise import connections

from messaging import metrics
from messaging.backoff import Backoff
from messaging.console import DeadLetterConsole
from messaging.consumer import Dispatcher, EventConsumer, Handler, RetryWorker
from messaging.dead_letters import DeadLetter, DeadLetterRelay, DeadLetters
from messaging.inbox import InboxMessage, purge_older_than
from messaging.kafka import KafkaSettings, check_consumer_config, check_producer_config, make_consumer, make_producer
from messaging.notifications import Callback, PgListener
from messaging.outbox import DATABASE_ERRORS, NOTIFY_CHANNEL, OutboxMessage, OutboxRelay
from messaging.retries import Failures, MessageRetry, RetryPolicy
from messaging.supervisor import Supervisor
from messaging.unit_of_work import Transactions

log = logging.getLogger("messaging.runtime")

Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)
Cleanup = Callable[[], Awaitable[int]]
# Part of a SIGTERM's budget (servicekit.limits.SHUTDOWN_GRACE_SECONDS).
STOP_TIMEOUT = 3.0


@dataclass(frozen=True)
class Subscription:
    topic: str
    group_id: str
    handlers: Mapping[str, Handler]


@dataclass(frozen=True)
class FailureTables:
    """Where a service keeps the messages it could not apply (messaging/sql/failures)."""

    retries: type[MessageRetry]
    dead_letters: type[DeadLetter]


class Messaging:
    def __init__(
        self,
        *,
        service: str,
        kafka: KafkaSettings,
        dsn: str,
        outbox: type[OutboxMessage],
        subscriptions: list[Subscription],
        failures: FailureTables,
        retry_policy: RetryPolicy | None = None,
        inbox: type[InboxMessage] | None = None,
        relay_batch: int = 200,
        retention_seconds: float = 7 * 86400,
        channels: Mapping[str, Callback] | None = None,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        cleanups: list[Cleanup] | None = None,
    ) -> None:
        check_producer_config(kafka.producer_config())
        for subscription in subscriptions:
            check_consumer_config(kafka.consumer_config(subscription.group_id))
        self._kafka = kafka
        self._subscriptions = subscriptions
        self._inbox = inbox
        self._retention_seconds = retention_seconds
        self._background: dict[str, Callable[[], Awaitable[None]]] = {}
        self._cleanups = list(cleanups or [])
        self.service = service
        metrics.report_from_zero(service, [s.topic for s in subscriptions], inbox=inbox is not None)
        self.relay = OutboxRelay(outbox, service=service, batch_size=relay_batch)
        self.dead_letters = DeadLetters(failures.dead_letters)
        self.failures = Failures(failures.retries, self.dead_letters, retry_policy or RetryPolicy())
        self.dead_letter_relay = DeadLetterRelay(self.dead_letters, service)
        self.console = DeadLetterConsole(self.dead_letters, service)
        self._dispatchers = {s.topic: Dispatcher(s.handlers, self.failures) for s in subscriptions}
        self.transactions = Transactions(self.relay.announce)
        self.retry_worker = RetryWorker(
            self._dispatchers,
            self.failures,
            service=service,
            transactions=self.transactions,
            after_dead_letter=self.dead_letter_relay.wake,
        )
        # One LISTEN connection per instance serves the relay and whatever else the service listens for.
        self.listener = PgListener(
            dsn, {NOTIFY_CHANNEL: self.relay.wake, **(channels or {})}, on_reconnect=self._catch_up
        )
        self._on_reconnect = on_reconnect
        self.supervisor = Supervisor(service)
        self.consumers: list[EventConsumer] = []
        self._clients: list[AIOKafkaProducer | AIOKafkaConsumer] = []
        self.producer: AIOKafkaProducer | None = None

    def also_run(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Another of the service's background loops, started, stopped and supervised with these."""
        self._background[name] = work

    async def _catch_up(self) -> None:
        self.relay.wake()
        if self._on_reconnect:
            await self._on_reconnect()

    def start(self) -> None:
        """The LISTEN connection, the retry worker and housekeeping need only PostgreSQL, so they run even while
        Kafka is away; the relays and consumers start once it answers."""
        start = self.supervisor.start
        start("listener", self.listener.run)
        start("announcer", self.relay.run_announcer)
        start("retention", self._housekeeping)
        start("retry-worker", self.retry_worker.run)
        for name, work in self._background.items():
            start(name, work)
        start("kafka-clients", self._start_kafka)

    async def stop(self) -> None:
        await self.supervisor.stop()
        await asyncio.gather(*(stopped(client) for client in reversed(self._clients)))
        self._clients.clear()
        log.info("messaging stopped")

    @property
    def running(self) -> bool:
        """Kafka's clients are up and no loop is down."""
        return self.producer is not None and not self.supervisor.down()

    async def _start_kafka(self) -> None:
        """Each client once: started again after a failure, this starts only what is not running yet."""
        if self.producer is None:
            self.producer = await started(lambda: make_producer(self._kafka))
            self._clients.append(self.producer)
        producer = self.producer
        for subscription in self._subscriptions:
            name = f"consumer {subscription.topic}"
            if name in self.supervisor.states:
                continue
            consumer = await started(lambda s=subscription: make_consumer(self._kafka, s.topic, s.group_id))
            self._clients.append(consumer)
            event_consumer = EventConsumer(
                consumer,
                self._dispatchers[subscription.topic],
                service=self.service,
                transactions=self.transactions,
                after_dead_letter=self.dead_letter_relay.wake,
            )
            self.consumers.append(event_consumer)
            self.supervisor.start(name, event_consumer.run)
        self.supervisor.start("outbox-relay", lambda: self.relay.run(producer))
        self.supervisor.start("dead-letter-relay", lambda: self.dead_letter_relay.run(producer))

    async def _housekeeping(self, interval: float = 60.0) -> None:
        """Retention: published outbox rows, old inbox rows and whatever else the service keeps for a while go, in
        bounded batches, once a minute."""
        while True:
            try:
                deleted = await self.relay.delete_published(self._retention_seconds)
                if self._inbox:
                    deleted += await purge_older_than(self._inbox, self._retention_seconds)
                for cleanup in self._cleanups:
                    deleted += await cleanup()
                if deleted:
                    log.info("retention removed %d rows", deleted)
            except DATABASE_ERRORS as exc:
                log.warning("retention cleanup failed: %s", exc)
            await asyncio.sleep(interval)

    async def lag(self) -> dict[tuple[str, int], int]:
        lag: dict[tuple[str, int], int] = {}
        for consumer in self.consumers:
            lag |= await consumer.lag()
        return lag

    async def refresh_metrics(self) -> None:
        """Set the gauges that cost a query, before a scrape reads them."""
        backlog = await self.relay.backlog()
        metrics.OUTBOX_PENDING.labels(self.service).set(backlog.pending.value)
        metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(backlog.oldest_age_seconds)
        metrics.CONSUMER_LAG.set(self.service, await self.lag())

    async def state(self) -> dict[str, Any]:
        """The instance's messaging figures; ``estimates`` names those that are PostgreSQL's estimates (the tables
        are past ``messaging.counting.EXACT_UP_TO`` rows)."""
        lag = {f"{topic}/{partition}": behind for (topic, partition), behind in (await self.lag()).items()}
        db = connections.get("default")
        dead_letters, letters_exact = await self.dead_letters.counts(db)
        backlog = await self.relay.backlog()
        retrying = await self.failures.waiting(db)
        known = {"outbox": backlog.pending.exact, "dead_letters": letters_exact, "retrying": retrying.exact}
        return {
            "running": self.running,
            "listening": self.listener.connected.is_set(),
            "outbox": backlog.as_dict() | self.relay.stats.as_dict(),
            "consumers": [vars(consumer.stats) for consumer in self.consumers],
            "consumer_lag": lag,
            "dead_letters": dead_letters["PENDING"],
            "dead_letters_by_state": dead_letters,
            "retrying": retrying.value,
            "retries": {"recovered": self.retry_worker.recovered, "dead_lettered": self.retry_worker.dead_lettered},
            "background_tasks": {name: state.as_dict() for name, state in self.supervisor.states.items()},
            "estimates": [name for name, exact in known.items() if not exact],
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
