"""Transactional inbox: a consumer records each ``message_id`` in the same transaction as the message's effect,
so a redelivered message finds its id there and does nothing."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from messaging import metrics
from messaging.after_commit import after_commit
from messaging.retention import delete_older_than
from messaging.sql import Identifier, Sql


class InboxMessage(Model):
    """Each consuming service subclasses this in its own models (its table, its migration)."""

    message_id = fields.UUIDField(primary_key=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        abstract = True


def first_delivery(model: type[InboxMessage], message_id: uuid.UUID) -> Sql:
    """The INSERT that records ``message_id`` and returns it only the first time it is seen.

    A consumer puts it in the same statement as the message's effect (as a part the effect depends on), so
    recording the delivery and applying it take one round trip.
    """
    return Sql(
        "INSERT INTO {table} (message_id, received_at) VALUES ({message_id}, now()) "
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        table=Identifier(model._meta.db_table),
        message_id=message_id,
    )


def seen_again(model: type[InboxMessage]) -> None:
    """Count a delivery the inbox had already recorded (``first_delivery`` returned nothing), once the transaction
    that found it commits. The series is labelled with the service whose ORM app holds the inbox."""
    after_commit(metrics.INBOX_DUPLICATES.labels(model._meta.app).inc)


async def purge_older_than(model: type[InboxMessage], seconds: float) -> int:
    """Retention cleanup. Correctness never depends on these rows alone: every effect also has its own unique
    business key (one payment per order), so a redelivery after the purge still changes nothing."""
    return await delete_older_than(model._meta.db_table, "message_id", "received_at", seconds)
