"""How orders are shown to clients: the JSON shapes the routes answer with and the WebSocket pushes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servicekit.money import format_amount

if TYPE_CHECKING:
    from orders.domain import NewOrder
    from orders.models import Order


def order_view(order: Order) -> dict[str, Any]:
    """The order as every endpoint (and every WebSocket push) shows it."""
    return {
        "id": str(order.id),
        "user_id": order.user_id,
        "amount": format_amount(order.amount),
        "description": order.description,
        "status": str(order.status),
        "failure_reason": order.failure_reason,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def new_order_view(new: NewOrder) -> dict[str, Any]:
    """A new order as its Idempotency-Key's fingerprint is taken of: equal amounts, however written, are one
    request."""
    return {"amount": format_amount(new.amount), "description": new.description}
