"""Orders use cases. Placing an order is one statement, which its caller runs (``messaging.unit_of_work``); applying
payment results takes the consumer's unit of work; asking about overdue orders owns its transaction. Kafka is never
called inside a transaction (the outbox is)."""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from tortoise import connections

from messaging import sql
from messaging.after_commit import after_commit
from messaging.counting import count, count_by
from messaging.events import Envelope, FailureReason, PaymentExpireRequested, PaymentRequested
from messaging.outbox import enqueue, outbox_row
from messaging.sql import Sql
from messaging.unit_of_work import Transactions, UnitOfWork
from orders import metrics, queries
from orders.domain import NewOrder, OrderQuery, OrderStatus
from orders.models import Order, Outbox
from orders.views import order_view
from servicekit.problems import NotFound

log = logging.getLogger("orders.service")

STATUS_CHANNEL = "order_status"
EXPIRY_BATCH = 500
OVERDUE_BOUND = 10_000


class Placement(NamedTuple):
    order: Order
    statement: Sql
    """The order and its payment command, atomic on its own."""


def place_order(*, user_id: str, new: NewOrder, commands_topic: str) -> Placement:
    """The order (PENDING) and its payment command as one statement: run alone, it is one round trip with no BEGIN
    and COMMIT. Plain SQL: this runs once per order on the hot path, and the ORM's insert costs several times the
    statement."""
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
    statement = queries.insert_order(
        order_id=order.id,
        user_id=user_id,
        amount=new.amount,
        description=new.description,
        status=str(OrderStatus.PENDING),
        at=now,
        then=outbox_row(Outbox, commands_topic, user_id, Envelope(command)),
    )
    return Placement(order, statement)


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
    user_id: str
    amount: Decimal
    failure: FailureReason | None
    """None: paid."""


async def apply_payment_results(work: UnitOfWork, outcomes: list[PaymentOutcome]) -> dict[int, str]:
    """Settle the PENDING ones of these orders; a result for an order already settled (a redelivery) changes nothing.
    Returns the results refused, by their index in ``outcomes``, with the reason: one for an order this service does
    not have, or whose user or amount differ from the order's, is never applied (Payments decided about other money).

    One statement for the lot: this runs for every order on the hot path, and the consumer hands over all the
    results one poll brought. It also NOTIFYs every Orders instance (and so every live socket) of each change,
    delivered only when the transaction commits. An order whose result came twice keeps the first one (every result
    for an order carries the same decision anyway).
    """
    statement = queries.settle(
        order_ids=[outcome.order_id for outcome in outcomes],
        user_ids=[outcome.user_id for outcome in outcomes],
        amounts=[outcome.amount for outcome in outcomes],
        statuses=[str(OrderStatus.FAILED if outcome.failure else OrderStatus.PAID) for outcome in outcomes],
        failures=[outcome.failure and str(outcome.failure) for outcome in outcomes],
        channel=STATUS_CHANNEL,
    )
    rows = await work.fetch_all(statement, queries.Settled)
    refused = {}
    for row in rows:
        if row.position is None:
            reason = row.failure_reason
            log.info("order %s %s", row.id, row.status if reason is None else f"{row.status} ({reason})")
            after_commit(functools.partial(metrics.settled, row.status, row.settle_seconds))
            continue
        outcome = outcomes[row.position - 1]
        if not row.known:
            refused[row.position - 1] = f"order {outcome.order_id} does not exist"
        else:
            refused[row.position - 1] = (
                f"order {outcome.order_id} is {row.order_amount} for {row.order_user_id}, "
                f"not {outcome.amount} for {outcome.user_id}"
            )
    return refused


async def request_expiry_of_overdue(
    transactions: Transactions, deadline_seconds: float, commands_topic: str, limit: int = EXPIRY_BATCH
) -> list[uuid.UUID]:
    """Ask Payments to close the orders PENDING for longer than ``deadline_seconds``, and again each deadline later
    while one stays PENDING (the request may itself have been lost to a dead letter). Payments decides: it fails the
    order as PAYMENT_TIMEOUT only if it never took a decision for it, so a late payment command can never debit it.

    Marking an order as asked and enqueuing the request commit together, and ``SKIP LOCKED`` leaves an order that
    another instance is asking about to that instance: instances never ask twice at once (and if a crash made one
    ask again, Payments' ledger would still decide once). Returns the orders asked about."""

    async def ask(work: UnitOfWork) -> list[queries.Overdue]:
        statement = queries.mark_overdue_asked(deadline_seconds=deadline_seconds, limit=limit)
        overdue = await work.fetch_all(statement, queries.Overdue)
        for order in overdue:
            request = PaymentExpireRequested(order_id=order.id, user_id=order.user_id, amount=order.amount)
            await enqueue(Outbox, work, commands_topic, order.user_id, Envelope(request))
        return overdue

    overdue = await transactions.run(ask)
    for order in overdue:
        log.warning("order %s of %s is past its payment deadline; asking Payments to close it", order.id, order.user_id)
    return [order.id for order in overdue]


async def count_overdue(deadline_seconds: float, bound: int = OVERDUE_BOUND) -> int:
    """Orders PENDING for longer than the deadline, counted up to ``bound``: the PENDING ones only (a partial
    index), however many settled orders the table holds."""
    statement = queries.count_overdue(deadline_seconds=deadline_seconds, bound=bound)
    return (await sql.fetch_one(connections.get("default"), statement, queries.Counted)).n


async def summary() -> dict[str, Any]:
    """Figures for the Operations page: orders by status, the latest failures and the recent settlements. Each costs
    the same however many orders there are (``messaging.counting``; indexes ``orders_awaiting_payment``,
    ``orders_failed_newest``, ``orders_settled_at``)."""
    conn = connections.get("default")
    by_status, exact = await count_by(conn, "orders", "status", OrderStatus)
    pending = await count(conn, "orders WHERE status = 'PENDING'")
    by_status[OrderStatus.PENDING] = pending.value
    failures = await Order.filter(status=OrderStatus.FAILED).order_by("-updated_at").limit(10)
    settled = await sql.fetch_all(conn, queries.settled_per_10s(), queries.SettledPer10s)
    return {
        "orders_by_status": by_status,
        "latest_failures": [order_view(order) for order in failures],
        "settled_per_10s": [{"at": row.bucket.isoformat(), "settled": row.settled} for row in settled],
        "estimates": [] if exact and pending.exact else ["orders_by_status"],
    }
