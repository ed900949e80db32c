"""The order's rules: its states, what a valid new order is, and how it is shown to clients."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sanic.request import RequestParameters

from servicekit import params
from servicekit.money import format_amount, parse_amount
from servicekit.problems import Unprocessable

if TYPE_CHECKING:
    from orders.models import Order

MAX_DESCRIPTION = 500
DEFAULT_PAGE, MAX_PAGE = 50, 200


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    FAILED = "FAILED"


@dataclass(frozen=True)
class NewOrder:
    amount: Decimal
    description: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NewOrder:
        if "amount" not in body:
            raise Unprocessable("'amount' is required.")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise Unprocessable("'description' must be a string.")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise Unprocessable(f"'description' must be at most {MAX_DESCRIPTION} characters.")
        if description is not None and not _storable(description):
            raise Unprocessable("'description' must be Unicode text without NUL characters.")
        return cls(amount=parse_amount(body["amount"]), description=description)

    def as_json(self) -> dict[str, Any]:
        return {"amount": format_amount(self.amount), "description": self.description}


@dataclass(frozen=True)
class OrderQuery:
    limit: int
    offset: int
    status: OrderStatus | None

    @classmethod
    def from_args(cls, args: RequestParameters) -> OrderQuery:
        status = params.single(args, "status")
        if status is not None and status not in OrderStatus.__members__:
            raise Unprocessable(f"'status' must be one of {', '.join(OrderStatus)}.")
        return cls(
            limit=params.integer(args, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            offset=params.integer(args, "offset", 0, 0, params.MAX_OFFSET),
            status=OrderStatus(status) if status else None,
        )


def _storable(text: str) -> bool:
    """PostgreSQL text cannot hold a NUL character, nor UTF-8 an unpaired surrogate (a JSON escape can make one)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


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
