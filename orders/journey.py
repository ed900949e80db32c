"""An order's journey as Orders saw it: created, its payment command (and any expiry request) written and
published, settled, and its dead letters."""

from __future__ import annotations

from uuid import UUID

from tortoise import connections

from messaging.journey import Step, dead_letter_steps, outbox_steps
from orders.domain import OrderStatus
from orders.models import DeadLetter

COMMANDS = {"payment.requested": "payment command", "payment.expire_requested": "expiry request"}


async def journey(order_id: UUID) -> list[Step] | None:
    """None when Orders has neither the order nor a dead letter about it."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT user_id, amount, status, failure_reason, created_at, updated_at, expiry_requested_at "
        "FROM orders WHERE id = $1",
        [order_id],
    )
    letters = await dead_letter_steps("orders", order_id, DeadLetter._meta.db_table)
    if not rows:
        return letters or None
    order = rows[0]
    steps = [Step(order["created_at"], "orders", "order created", f"{order['amount']} for {order['user_id']}")]
    until = max(order["updated_at"], order["expiry_requested_at"] or order["created_at"])
    steps += await outbox_steps("orders", order_id, order["user_id"], order["created_at"], until, COMMANDS)
    if order["status"] != OrderStatus.PENDING:
        outcome = order["status"] + (f" ({order['failure_reason']})" if order["failure_reason"] else "")
        steps.append(Step(order["updated_at"], "orders", "order settled", outcome))
    return steps + letters
