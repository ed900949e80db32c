"""Transactional inbox: a consumer records each ``message_id`` in the same transaction as the message's effect,
so a redelivered message finds its id there and does nothing."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from messaging.retention import delete_older_than


class InboxMessage(Model):
    """Each consuming service subclasses this in its own models (its table, its migration)."""

    message_id = fields.UUIDField(primary_key=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        abstract = True


async def record_once(model: type[InboxMessage], conn: BaseDBAsyncClient, message_id: uuid.UUID) -> bool:
    """True the first time this message id is seen; False for a duplicate delivery."""
    inserted = await conn.execute_query_dict(
        f"INSERT INTO {model._meta.db_table} (message_id, received_at) VALUES ($1, now()) "
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        [message_id],
    )
    return bool(inserted)


async def purge_older_than(model: type[InboxMessage], seconds: float) -> int:
    """Retention cleanup. Correctness never depends on these rows alone: every effect also has its own unique
    business key (one payment per order), so a redelivery after the purge still changes nothing."""
    return await delete_older_than(model._meta.db_table, "message_id", "received_at", seconds)
