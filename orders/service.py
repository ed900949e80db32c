"""Orders use cases. Each owns its transaction; Kafka is never called inside one (the outbox is)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from messaging.events import Envelope, FailureReason, PaymentRequested
from messaging.outbox import outbox_insert
from orders.domain import NewOrder, OrderQuery, OrderStatus, order_view
from orders.models import Order, Outbox
from servicekit.problems import NotFound

log = logging.getLogger("orders.service")

STATUS_CHANNEL = "order_status"


async def create_order(conn: BaseDBAsyncClient, *, user_id: str, new: NewOrder, commands_topic: str) -> Order:
    """The order (PENDING) and its payment command in one statement, so it is atomic on its own: with no
    transaction around it, it is one round trip. Plain SQL: this runs once per order on the hot path, and the
    ORM's insert costs several times the statement."""
    now = datetime.now(UTC)
    order = Order(
        id=uuid.uuid4(),
        user_id=user_id,
        amount=new.amount,
        description=new.description,
        status=OrderStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    command = PaymentRequested(order_id=order.id, user_id=user_id, amount=new.amount)
    enqueue_command, command_parameters = outbox_insert(
        Outbox, commands_topic, user_id, Envelope(command), first_parameter=7
    )
    await conn.execute_query(
        "WITH new_order AS (INSERT INTO orders (id, user_id, amount, description, status, created_at, updated_at) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $6)) {enqueue_command}",
        [order.id, user_id, new.amount, new.description, str(OrderStatus.PENDING), now, *command_parameters],
    )
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


class PaymentOutcome(NamedTuple):
    order_id: uuid.UUID
    failure: FailureReason | None
    """None: paid."""


async def apply_payment_results(conn: BaseDBAsyncClient, outcomes: list[PaymentOutcome]) -> None:
    """Settle the PENDING ones of these orders; a result for an order already settled (a redelivery) changes nothing.

    One statement for the lot: this runs for every order on the hot path, and the consumer hands over all the
    results one poll brought. It also NOTIFYs every Orders instance (and so every live socket) of each change,
    delivered only when the transaction commits. An order whose result came twice keeps the first one (every result
    for an order carries the same decision anyway).
    """
    first: dict[uuid.UUID, PaymentOutcome] = {}
    for outcome in outcomes:
        first.setdefault(outcome.order_id, outcome)
    _, settled = await conn.execute_query(
        "WITH settled AS (UPDATE orders SET status = outcome.status, failure_reason = outcome.failure, "
        "updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::text[]) AS outcome (order_id, status, failure) "
        "WHERE orders.id = outcome.order_id AND orders.status = 'PENDING' "
        "RETURNING orders.id, orders.user_id, orders.status, orders.failure_reason) "
        "SELECT id, status, failure_reason, "
        "pg_notify($4, json_build_object('order_id', id, 'user_id', user_id)::text) FROM settled",
        [
            list(first),
            [str(OrderStatus.FAILED if outcome.failure else OrderStatus.PAID) for outcome in first.values()],
            [outcome.failure and str(outcome.failure) for outcome in first.values()],
            STATUS_CHANNEL,
        ],
    )
    for order in settled:
        reason = order["failure_reason"]
        log.info("order %s %s", order["id"], order["status"] if reason is None else f"{order['status']} ({reason})")


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
