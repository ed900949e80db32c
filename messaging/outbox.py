"""Transactional outbox: an event is a row written in the same transaction as the change it announces, and a
relay publishes committed rows to Kafka, marking them published only after the broker acknowledged them.

Ordering: rows are split into lanes by a hash of their key (the user id). A relay publishes only from lanes it
holds a transaction-level advisory lock on, oldest row first, and waits for the broker's acks before it commits
and lets go of the lanes. So several relay replicas share the work (``FOR UPDATE SKIP LOCKED`` as well as the
lane locks), yet the rows of one key are always published by one relay at a time, in the order they committed.
A crash between the ack and the commit publishes those rows again: at-least-once, with the same ``message_id``.

Wake-ups: the unit of work that committed outbox rows calls ``announce()`` afterwards (``messaging.unit_of_work``),
which wakes this relay at once and the other instances' relays with one NOTIFY (a lane this relay found locked is
another relay's to publish). A missed wake-up costs latency, never a message: the relay also polls every second.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tortoise import connections, fields
from tortoise.exceptions import BaseORMException
from tortoise.models import Model
from tortoise.transactions import in_transaction

from messaging import faults, metrics
from messaging.backoff import Backoff
from messaging.context import in_own_context
from messaging.counting import Count, count
from messaging.events import Envelope
from messaging.retention import delete_older_than
from messaging.sql import Identifier, Sql
from messaging.unit_of_work import UnitOfWork

log = logging.getLogger("messaging.outbox")

LANES = 16
NOTIFY_CHANNEL = "outbox"
# A database restart also surfaces as asyncpg's own errors, which the ORM does not translate: "the database system
# is starting up" while the pool reconnects, or a rollback on a connection that died in the middle of a transaction.
DATABASE_ERRORS = (BaseORMException, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class OutboxMessage(Model):
    """Each service subclasses this in its own models, so the table lands in that service's migrations."""

    id = fields.BigIntField(primary_key=True)
    message_id = fields.UUIDField()
    topic = fields.CharField(max_length=249)
    key = fields.CharField(max_length=255)
    lane = fields.SmallIntField()
    payload = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)
    published_partition = fields.IntField(null=True)
    published_offset = fields.BigIntField(null=True)

    class Meta:
        abstract = True


def lane_of(key: str) -> int:
    return zlib.crc32(key.encode()) % LANES


async def enqueue(model: type[OutboxMessage], work: UnitOfWork, topic: str, key: str, envelope: Envelope) -> None:
    """Add the event to the outbox in the unit of work, which wakes the relay once it committed. Plain SQL: this runs
    once per event on the hot path, and the ORM's insert costs several times the statement."""
    await work.execute(outbox_row(model, topic, key, envelope))


def outbox_row(
    model: type[OutboxMessage], topic: str, key: str, envelope: Envelope, *, only_if: Sql | None = None
) -> Sql:
    """The INSERT that enqueues the event, for a caller that writes its change and the event in one statement (as
    a part of it): one round trip, atomic without BEGIN and COMMIT. ``only_if`` is a condition (on the statement's
    other parts) for an event that announces one outcome only."""
    insert = Sql(
        "INSERT INTO {table} (message_id, topic, key, lane, payload, created_at) "
        "SELECT {message_id}, {topic}, {key}, {lane}, {payload}, now()",
        table=Identifier(model._meta.db_table),
        message_id=envelope.message_id,
        topic=topic,
        key=key,
        lane=lane_of(key),
        payload=envelope.to_json(),
    )
    statement = insert if only_if is None else Sql("{insert} WHERE {condition}", insert=insert, condition=only_if)
    return statement.writing_outbox()


@dataclass(frozen=True)
class Backlog:
    pending: Count
    oldest_age_seconds: float

    def as_dict(self) -> dict[str, float | int]:
        return {"pending": self.pending.value, "oldest_age_seconds": self.oldest_age_seconds}


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    last_error: str | None = None
    recent_lags_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, object]:
        lags = sorted(self.recent_lags_ms)
        p99 = lags[int(len(lags) * 0.99)] if lags else None
        return {
            "published": self.published,
            "batches": self.batches,
            "failures": self.failures,
            "last_error": self.last_error,
            "publish_lag_p99_ms": p99,
        }


class OutboxRelay:
    def __init__(
        self, model: type[OutboxMessage], *, service: str, batch_size: int = 200, poll_interval: float = 1.0
    ) -> None:
        self._table = model._meta.db_table
        self._service = service
        self.producer: AIOKafkaProducer | None = None
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lock_space = zlib.crc32(self._table.encode()) & 0x7FFFFFFF
        self._wake = asyncio.Event()
        self._announcing = asyncio.Event()
        self._instance = uuid.uuid4().hex
        self.stats = RelayStats()

    def announce(self) -> None:
        """Call after a transaction that wrote outbox rows committed. Announcements made while a NOTIFY is on its
        way ride on the next one, so a busy writer sends far fewer NOTIFYs than it commits transactions."""
        self._wake.set()
        self._announcing.set()

    def wake(self, sender: str = "") -> None:
        """Called on every NOTIFY on the outbox channel (except this relay's own) and after the listen connection
        reconnects."""
        if sender != self._instance:
            self._wake.set()

    async def run_announcer(self) -> None:
        """Send the NOTIFYs ``announce()`` asked for, one at a time, outside any transaction."""
        while True:
            await self._announcing.wait()
            self._announcing.clear()
            try:
                await connections.get("default").execute_query(
                    "SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, self._instance]
                )
            except DATABASE_ERRORS as exc:
                # Only the other instances' latency suffers: they poll.
                log.warning("outbox %s: announcing failed (%s)", self._table, exc)
                await asyncio.sleep(self._poll_interval)

    async def run(self, producer: AIOKafkaProducer) -> None:
        """Publish until cancelled; while Kafka or the database is down, retry with backoff."""
        self.producer = producer
        backoff = Backoff(maximum=5.0)
        while True:
            self._wake.clear()
            faults.point("relay.before_batch")
            try:
                published = await in_own_context(self.publish_batch())
            except (KafkaError, *DATABASE_ERRORS) as exc:
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff.next()
                log.warning("outbox %s: publishing failed (%s); retrying in %.1fs", self._table, exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if published < self._batch_size:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that arrives as the
                # event is set, and the relay would outlive Messaging.stop() (a shutdown hanging until SIGKILL).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wake.wait()

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished rows of the lanes this relay can lock; returns how many."""
        assert self.producer is not None, "run() sets the producer"
        async with in_transaction() as conn:
            # One statement, one round trip: the lanes this relay can lock, and the oldest unpublished rows in them.
            # The transaction writes only the published marks; losing one in a crash means publishing the row again,
            # which consumers absorb, so its commit need not wait for the disk (one fsync fewer per batch).
            _, rows = await conn.execute_query(
                "WITH relay AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true), "
                "ARRAY(SELECT lane FROM generate_series(0, $1 - 1) AS lane "
                "WHERE pg_try_advisory_xact_lock($2, lane)) AS lanes) "
                f"SELECT id, topic, key, payload, created_at FROM {self._table}, relay "
                "WHERE published_at IS NULL AND lane = ANY(relay.lanes) ORDER BY id LIMIT $3 "
                f"FOR UPDATE OF {self._table} SKIP LOCKED",
                [LANES, self._lock_space, self._batch_size],
            )
            if not rows:
                return 0
            acks = [
                await self.producer.send(row["topic"], row["payload"].encode(), key=row["key"].encode()) for row in rows
            ]
            records = await asyncio.gather(*acks)
            faults.point("relay.after_ack")
            await conn.execute_query(
                f"UPDATE {self._table} SET published_at = clock_timestamp(), published_partition = acked.partition, "
                "published_offset = acked.position "
                "FROM unnest($1::bigint[], $2::integer[], $3::bigint[]) AS acked (id, partition, position) "
                f"WHERE {self._table}.id = acked.id",
                [[row["id"] for row in rows], [r.partition for r in records], [r.offset for r in records]],
            )
        self._record(rows)
        return len(rows)

    def _record(self, rows: list[dict]) -> None:
        now = time.time()
        self.stats.published += len(rows)
        self.stats.batches += 1
        lags = [(now - row["created_at"].timestamp()) * 1000 for row in rows]
        self.stats.recent_lags_ms = (self.stats.recent_lags_ms + lags)[-1000:]
        for topic, published in collections.Counter(row["topic"] for row in rows).items():
            metrics.OUTBOX_PUBLISHED.labels(self._service, topic).inc(published)

    async def delete_published(self, retention_seconds: float) -> int:
        """Retention: delete rows published longer ago than ``retention_seconds``."""
        return await delete_older_than(self._table, "id", "published_at", retention_seconds)

    async def backlog(self) -> Backlog:
        """How many rows wait to be published (``messaging.counting``) and how old the oldest is: the first
        unpublished row of each lane, one probe of the partial index per lane, however long the backlog."""
        conn = connections.get("default")
        pending = await count(conn, f"{self._table} WHERE published_at IS NULL")
        (oldest,) = await conn.execute_query_dict(
            "SELECT coalesce(extract(epoch FROM now() - min(first.created_at)), 0)::float8 AS age "
            f"FROM generate_series(0, $1 - 1) AS lanes (lane), LATERAL (SELECT created_at FROM {self._table} "
            "WHERE published_at IS NULL AND lane = lanes.lane ORDER BY id LIMIT 1) AS first",
            [LANES],
        )
        return Backlog(pending, oldest["age"])
