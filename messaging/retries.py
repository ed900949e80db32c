"""Bounded retries of a failed message, off the consumer's path.

A message whose handler failed for a reason of its own (not the database or Kafka being away) is set aside in the
service's ``message_retries`` table and the consumer moves on, so the messages behind it are not held up. The retry
worker of any instance tries it again when it is due, doubling the wait each time; after ``max_attempts`` attempts
in all it becomes a dead letter. Setting it aside and moving on commit together, so a message is never both
dropped from the partition and missing from the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from messaging.counting import Count, count
from messaging.dead_letters import DeadLetters, Delivery, Failure, Letter, storable
from messaging.events import InvalidMessage


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts in all, the first delivery's included; 1 dead-letters at the first failure."""
    budget_seconds: float = 10.0
    """The waits between them add up to this."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(env.get("CONSUMER_MAX_ATTEMPTS", cls.max_attempts))),
            budget_seconds=float(env.get("CONSUMER_RETRY_BUDGET_SECONDS", cls.budget_seconds)),
        )

    def delay_after(self, attempt: int) -> float:
        """Seconds between attempt ``attempt`` and the next: doubling, so the first retry comes soon and a
        message that keeps failing is left alone longer."""
        waits = self.max_attempts - 1
        return self.budget_seconds * 2 ** (attempt - 1) / (2**waits - 1)


class MessageRetry(Model):
    """Each consuming service subclasses this in its own models (its table, its migration)."""

    id = fields.BigIntField(primary_key=True)
    source_topic = fields.CharField(max_length=249)
    source_partition = fields.IntField()
    source_offset = fields.BigIntField()
    key = fields.BinaryField(null=True)
    headers = fields.JSONField()
    payload = fields.BinaryField(null=True)
    attempts = fields.IntField()
    error_class = fields.TextField()
    error_message = fields.TextField()
    first_failed_at = fields.DatetimeField()
    last_failed_at = fields.DatetimeField()
    next_attempt_at = fields.DatetimeField()

    class Meta:
        abstract = True


@dataclass(frozen=True)
class DueRetry:
    id: int
    delivery: Delivery
    attempts: int
    """Attempts made so far."""
    first_failed_at: datetime


class Failures:
    """Where a failed message goes: back for another attempt later, or to the dead letters."""

    def __init__(self, retries: type[MessageRetry], dead_letters: DeadLetters, policy: RetryPolicy) -> None:
        self._table = retries._meta.db_table
        self.dead_letters = dead_letters
        self.policy = policy

    async def record(
        self,
        conn: BaseDBAsyncClient,
        delivery: Delivery,
        exc: BaseException,
        attempt: int,
        first_failed_at: datetime | None = None,
    ) -> bool:
        """Attempt ``attempt`` failed with ``exc``: schedule the next one, or dead-letter the message once none is
        left (at once for a message that turned out invalid). True when it was dead-lettered."""
        now = datetime.now(UTC)
        first_failed_at = first_failed_at or now
        if isinstance(exc, InvalidMessage) or attempt >= self.policy.max_attempts:
            reason = str(exc) if isinstance(exc, InvalidMessage) else f"failed {attempt} times; giving up"
            await self.forget(conn, delivery)
            letter = Letter(delivery, Failure.of(exc, reason), attempt, first_failed_at, now)
            await self.dead_letters.add(conn, [letter])
            return True
        failure = Failure.of(exc)
        await conn.execute_query(
            f"INSERT INTO {self._table} AS r (source_topic, source_partition, source_offset, key, headers, payload, "
            "attempts, error_class, error_message, first_failed_at, last_failed_at, next_attempt_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11::timestamptz + make_interval(secs => $12)) "
            "ON CONFLICT (source_topic, source_partition, source_offset) DO UPDATE SET "
            "attempts = greatest(r.attempts, EXCLUDED.attempts), error_class = EXCLUDED.error_class, "
            "error_message = EXCLUDED.error_message, last_failed_at = EXCLUDED.last_failed_at, "
            "next_attempt_at = EXCLUDED.next_attempt_at",
            [
                delivery.topic,
                delivery.partition,
                delivery.offset,
                delivery.key,
                delivery.headers_json(),
                delivery.value,
                attempt,
                storable(failure.error_class),
                storable(failure.error_message),
                first_failed_at,
                now,
                self.policy.delay_after(attempt),
            ],
        )
        return False

    async def claim_due(self, conn: BaseDBAsyncClient) -> DueRetry | None:
        """The retry that has waited longest past its time, locked for this transaction (other workers skip it)."""
        rows = await conn.execute_query_dict(
            "SELECT id, source_topic, source_partition, source_offset, key, headers, payload, attempts, "
            f"first_failed_at FROM {self._table} WHERE next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        if not rows:
            return None
        row = rows[0]
        delivery = Delivery(
            row["source_topic"],
            row["source_partition"],
            row["source_offset"],
            row["key"],
            row["payload"],
            Delivery.headers_from(row["headers"]),
        )
        return DueRetry(row["id"], delivery, row["attempts"], row["first_failed_at"])

    async def forget(self, conn: BaseDBAsyncClient, delivery: Delivery) -> None:
        """The message was handled (or dead-lettered): no more retries."""
        await conn.execute_query(
            f"DELETE FROM {self._table} WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
            [delivery.topic, delivery.partition, delivery.offset],
        )

    async def waiting(self, conn: BaseDBAsyncClient) -> Count:
        return await count(conn, self._table)
