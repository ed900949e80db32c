"""An order's journey as Payments saw it: the command received, the ledger's decision, the result written and
published, and its dead letters."""

from __future__ import annotations

from uuid import UUID

from tortoise import connections

from messaging.journey import Step, dead_letter_steps, outbox_steps
from payments.models import DeadLetter

RESULTS = {"payment.succeeded": "payment result", "payment.failed": "payment result"}


async def journey(order_id: UUID) -> list[Step] | None:
    """None when Payments has neither a decision about the order nor a dead letter about it."""
    db = connections.get("default")
    rows = await db.execute_query_dict(
        "SELECT p.user_id, p.amount, p.status, p.failure_reason, p.message_id, p.created_at, i.received_at "
        "FROM payments p LEFT JOIN inbox i ON i.message_id = p.message_id WHERE p.order_id = $1",
        [order_id],
    )
    letters = await dead_letter_steps("payments", order_id, DeadLetter._meta.db_table)
    if not rows:
        return letters or None
    decision = rows[0]
    command = str(decision["message_id"])
    steps = []
    if decision["received_at"] is not None:
        steps.append(Step(decision["received_at"], "payments", "command received", "into the inbox", command))
    outcome = decision["status"] + (f" ({decision['failure_reason']})" if decision["failure_reason"] else "")
    steps.append(
        Step(decision["created_at"], "payments", "ledger decision", f"{outcome}, {decision['amount']}", command)
    )
    created = decision["created_at"]
    steps += await outbox_steps("payments", order_id, decision["user_id"], created, created, RESULTS)
    return steps + letters
