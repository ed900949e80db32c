"""Retention removes old published outbox rows in bounded batches and keeps recent ones."""

from __future__ import annotations

import uuid

from tortoise import connections

from messaging.outbox import OutboxRelay, lane_of
from messaging.retention import BATCH_ROWS
from orders.models import Outbox


async def add_published_rows(count: int, days_ago: int) -> None:
    published = f"now() - interval '{days_ago} days'"
    await connections.get("default").execute_query(
        "INSERT INTO outbox (message_id, topic, key, lane, payload, created_at, published_at) "
        f"SELECT gen_random_uuid(), 'retention-test', $1, $2, '{{}}', now() - interval '30 days', {published} "
        "FROM generate_series(1, $3)",
        [f"retention-{uuid.uuid4().hex[:6]}", lane_of("k"), count],
    )


async def rows(where: str) -> int:
    _, result = await connections.get("default").execute_query(
        f"SELECT count(*) AS n FROM outbox WHERE topic = 'retention-test' AND {where}"
    )
    return result[0]["n"]


async def test_old_published_rows_go_and_recent_ones_stay(orders_orm: None) -> None:
    # Several batches' worth, all stamped alike: each batch starts where the last one ended, ties included.
    old = 2 * BATCH_ROWS + 50
    await add_published_rows(old, days_ago=8)
    await add_published_rows(10, days_ago=1)

    deleted = await OutboxRelay(Outbox, service="orders").delete_published(retention_seconds=7 * 86400)

    assert deleted >= old
    assert await rows("published_at < now() - interval '7 days'") == 0
    assert await rows("published_at >= now() - interval '7 days'") == 10
    await connections.get("default").execute_query("DELETE FROM outbox WHERE topic = 'retention-test'")
