"""Dead letters: messages a consumer gave up on, kept in the service's own database and copied to ``<topic>.dlq``.

The table is the record: one letter per received Kafka record (its source topic, partition and offset are unique),
written in the same transaction as whatever else the consumer did with that poll, so a letter exists exactly when
the consumer moved past its message. Operators read, replay and discard letters there. The ``<topic>.dlq`` copy,
the original key, headers and bytes with the letter's facts in ``dlq.*`` headers, is for the Kafka tools: the
relay below publishes each letter once it is committed and marks it, so a crash between the broker's ack and the
mark publishes that letter again (with the same ``dlq.letter`` id), as the outbox does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.transactions import in_transaction

from messaging.backoff import Backoff
from messaging.context import in_own_context
from messaging.counting import count_by
from messaging.letter_rules import DISCARDED, MAX_TYPE_LENGTH, PENDING, REPLAYED
from messaging.topics import dead_letter_topic
from messaging.transient import is_transient

log = logging.getLogger("messaging.dead_letters")

REPLAYS_HEADER = "gozon.replays"
"""Set by an operator's replay (``messaging.console``): how many times the message was replayed."""


@dataclass(frozen=True)
class Delivery:
    """A Kafka record as the consumer received it: what a retry and a dead letter keep, and what a replay sends."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, record: ConsumerRecord) -> Delivery:
        return cls(record.topic, record.partition, record.offset, record.key, record.value, tuple(record.headers or ()))

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def headers_json(self) -> str:
        return json.dumps([[name, base64.b64encode(value or b"").decode()] for name, value in self.headers])

    @staticmethod
    def headers_from(stored: str | list[list[str]]) -> tuple[tuple[str, bytes], ...]:
        pairs = json.loads(stored) if isinstance(stored, str) else stored
        return tuple((name, base64.b64decode(value)) for name, value in pairs)


@dataclass(frozen=True)
class Failure:
    """Why a message failed: the reason in a sentence, and the exception's class and message."""

    reason: str
    error_class: str
    error_message: str

    @classmethod
    def of(cls, exc: BaseException, reason: str | None = None) -> Failure:
        message = str(exc)
        return cls(reason or message or type(exc).__name__, type(exc).__name__, message)

    @property
    def error(self) -> str:
        return f"{self.error_class}: {self.error_message}"


class DeadLetter(Model):
    """Each consuming service subclasses this in its own models (its table, its migration)."""

    id = fields.BigIntField(primary_key=True)
    source_topic = fields.CharField(max_length=249)
    source_partition = fields.IntField()
    source_offset = fields.BigIntField()
    key = fields.BinaryField(null=True)
    headers = fields.JSONField()
    payload = fields.BinaryField(null=True)
    message_id = fields.UUIDField(null=True)
    type = fields.CharField(max_length=MAX_TYPE_LENGTH, null=True)
    order_id = fields.UUIDField(null=True)
    reason = fields.TextField()
    error_class = fields.TextField()
    error_message = fields.TextField()
    attempts = fields.IntField()
    first_failed_at = fields.DatetimeField()
    last_failed_at = fields.DatetimeField()
    state = fields.CharField(max_length=16, default=PENDING)
    replays = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Letter:
    delivery: Delivery
    failure: Failure
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


def replays_of(headers: Sequence[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == REPLAYS_HEADER and value.isdigit():
            return int(value)
    return 0


def storable(text: str) -> str:
    """PostgreSQL text holds neither NUL nor an unpaired surrogate; a reason may quote a message's bytes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def identifiers(value: bytes | None) -> tuple[uuid.UUID | None, str | None, uuid.UUID | None]:
    """The message id, type and order id a letter's payload names, as far as it can be read: an invalid message
    is still found by its order."""
    try:
        data = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    kind = data.get("type")
    return (
        _uuid(data.get("message_id")),
        storable(kind)[:MAX_TYPE_LENGTH] if isinstance(kind, str) else None,
        _uuid(data.get("order_id")),
    )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


class DeadLetters:
    """The service's dead-letter table."""

    def __init__(self, model: type[DeadLetter]) -> None:
        self.table = model._meta.db_table

    async def add(self, conn: BaseDBAsyncClient, letters: Sequence[Letter]) -> int:
        """Record the letters in the caller's transaction; a record already dead-lettered (delivered again) is
        not recorded twice. Returns how many are new."""
        added = 0
        for letter in letters:
            delivery, failure = letter.delivery, letter.failure
            message_id, kind, order_id = identifiers(delivery.value)
            rows = await conn.execute_query_dict(
                f"INSERT INTO {self.table} (source_topic, source_partition, source_offset, key, headers, payload, "
                "message_id, type, order_id, reason, error_class, error_message, attempts, first_failed_at, "
                "last_failed_at, replays) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
                "ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING RETURNING id",
                [
                    delivery.topic,
                    delivery.partition,
                    delivery.offset,
                    delivery.key,
                    delivery.headers_json(),
                    delivery.value,
                    message_id,
                    kind,
                    order_id,
                    storable(failure.reason),
                    storable(failure.error_class),
                    storable(failure.error_message),
                    letter.attempts,
                    letter.first_failed_at,
                    letter.last_failed_at,
                    replays_of(delivery.headers),
                ],
            )
            if rows:
                added += 1
                log.warning(
                    "dead-lettered %s (order %s, %s) after %d attempt(s): %s [%s]",
                    delivery.source,
                    order_id,
                    kind,
                    letter.attempts,
                    failure.reason,
                    failure.error,
                )
        return added

    async def counts(self, conn: BaseDBAsyncClient) -> tuple[dict[str, int], bool]:
        """Letters by state, and whether the counts are exact (``messaging.counting``)."""
        return await count_by(conn, self.table, "state", (PENDING, REPLAYED, DISCARDED))


class DeadLetterRelay:
    """Copies committed letters to ``<topic>.dlq``: woken after a commit that wrote some, and every few seconds for
    the letters other instances wrote or a crash left unpublished."""

    def __init__(
        self, letters: DeadLetters, service: str, *, batch_size: int = 100, poll_interval: float = 5.0
    ) -> None:
        self._table = letters.table
        self._service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, producer: AIOKafkaProducer) -> None:
        backoff = Backoff()
        while True:
            self._wake.clear()
            try:
                published = await in_own_context(self.publish_batch(producer))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = backoff.next()
                log.warning("publishing dead letters failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wake.wait()

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        async with in_transaction() as conn:
            rows = await conn.execute_query_dict(
                f"SELECT id, source_topic, source_partition, source_offset, key, headers, payload, reason, "
                f"error_class, error_message, attempts, first_failed_at, last_failed_at FROM {self._table} "
                f"WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                [self._batch_size],
            )
            if not rows:
                return 0
            acks = [
                await producer.send(
                    dead_letter_topic(row["source_topic"]),
                    row["payload"],
                    key=row["key"],
                    headers=[*Delivery.headers_from(row["headers"]), *self._headers(row)],
                )
                for row in rows
            ]
            await asyncio.gather(*acks)
            await conn.execute_query(
                f"UPDATE {self._table} SET published_at = clock_timestamp() WHERE id = ANY($1::bigint[])",
                [[row["id"] for row in rows]],
            )
        self.published += len(rows)
        return len(rows)

    def _headers(self, row: dict[str, Any]) -> list[tuple[str, bytes]]:
        facts = {
            "dlq.letter": row["id"],
            "dlq.service": self._service,
            "dlq.reason": row["reason"],
            "dlq.error": f"{row['error_class']}: {row['error_message']}",
            "dlq.attempts": row["attempts"],
            "dlq.source": f"{row['source_topic']}/{row['source_partition']}/{row['source_offset']}",
            "dlq.first_failed_at": row["first_failed_at"].isoformat(),
            "dlq.last_failed_at": row["last_failed_at"].isoformat(),
        }
        return [(name, str(value).encode()) for name, value in facts.items()]
