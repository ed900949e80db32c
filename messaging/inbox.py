"""Transactional inbox: a consumer records each ``message_id`` in the same transaction as the message's effect,
so a redelivered message finds its id there and does nothing."""

from __future__ import annotations

import uuid

from tortoise import connections, fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model


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


async def purge_older_than(model: type[InboxMessage], seconds: float, batch: int = 1000) -> int:
    """Retention cleanup in bounded batches. Correctness never depends on these rows alone: every effect also
    has its own unique business key (one payment per order)."""
    table = model._meta.db_table
    total = 0
    while True:
        deleted, _ = await connections.get("default").execute_query(
            f"DELETE FROM {table} WHERE message_id IN (SELECT message_id FROM {table} "
            "WHERE received_at < now() - make_interval(secs => $1) LIMIT $2)",
            [seconds, batch],
        )
        total += deleted
        if deleted < batch:
            return total
