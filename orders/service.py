"""Orders use cases. Each owns its transaction; Kafka is never called inside one (the outbox is)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from messaging.events import Envelope, FailureReason, PaymentRequested
from messaging.outbox import enqueue
from orders.domain import NewOrder, OrderQuery, OrderStatus, order_view
from orders.models import Order, Outbox
from servicekit.problems import NotFound

log = logging.getLogger("orders.service")

STATUS_CHANNEL = "order_status"


async def create_order(conn: BaseDBAsyncClient, *, user_id: str, new: NewOrder, commands_topic: str) -> Order:
    """The order (PENDING) and its payment command, in the caller's transaction."""
    now = datetime.now(UTC)
    order = await Order.create(
        id=uuid.uuid4(),
        user_id=user_id,
        amount=new.amount,
        description=new.description,
        status=OrderStatus.PENDING,
        created_at=now,
        updated_at=now,
        using_db=conn,
    )
    command = PaymentRequested(order_id=order.id, user_id=user_id, amount=new.amount)
    await enqueue(Outbox, conn, commands_topic, user_id, Envelope(command))
    log.info("order %s created for %s (%s)", order.id, user_id, new.amount)
    return order


async def get_order(*, user_id: str, order_id: str) -> Order:
    """The user's order; someone else's, an unknown or a malformed id are all the same 404."""
    try:
        key = uuid.UUID(order_id)
    except ValueError:
        raise NotFound("Order not found.") from None
    order = await Order.get_or_none(id=key, user_id=user_id)
    if order is None:
        raise NotFound("Order not found.")
    return order


async def list_orders(*, user_id: str, query: OrderQuery) -> dict[str, Any]:
    orders = Order.filter(user_id=user_id)
    if query.status:
        orders = orders.filter(status=query.status)
    total = await orders.count()
    page = await orders.order_by("-created_at", "-id").offset(query.offset).limit(query.limit)
    return {
        "items": [order_view(order) for order in page],
        "limit": query.limit,
        "offset": query.offset,
        "total": total,
    }


async def apply_payment_result(
    conn: BaseDBAsyncClient, *, order_id: uuid.UUID, user_id: str, reason: FailureReason | None
) -> bool:
    """Settle a PENDING order; a result for an order already settled (a redelivery) changes nothing.

    In the same transaction, NOTIFY tells every Orders instance (and so every live socket) that it changed.
    """
    status = OrderStatus.PAID if reason is None else OrderStatus.FAILED
    updated = (
        await Order.filter(id=order_id, status=OrderStatus.PENDING)
        .using_db(conn)
        .update(status=status, failure_reason=reason, updated_at=datetime.now(UTC))
    )
    if updated:
        payload = json.dumps({"order_id": str(order_id), "user_id": user_id})
        await conn.execute_query("SELECT pg_notify($1, $2)", [STATUS_CHANNEL, payload])
        log.info("order %s %s", order_id, status if reason is None else f"{status} ({reason})")
    return bool(updated)


async def summary() -> dict[str, Any]:
    """Figures for the Operations page: orders by status and the latest failures."""
    rows = await Order.all().group_by("status").annotate(n=Count("id")).values("status", "n")
    by_status = {str(status): 0 for status in OrderStatus} | {row["status"]: row["n"] for row in rows}
    failures = await Order.filter(status=OrderStatus.FAILED).order_by("-updated_at").limit(10)
    _, settled = await connections.get("default").execute_query(
        "SELECT to_timestamp(floor(extract(epoch FROM updated_at) / 10) * 10) AS bucket, count(*) AS settled "
        "FROM orders WHERE status <> 'PENDING' AND updated_at > now() - interval '5 minutes' "
        "GROUP BY bucket ORDER BY bucket"
    )
    return {
        "orders_by_status": by_status,
        "latest_failures": [order_view(order) for order in failures],
        "settled_per_10s": [{"at": row["bucket"].isoformat(), "settled": row["settled"]} for row in settled],
    }
