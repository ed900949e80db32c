"""The order's rules: its states, what a valid new order is, and how a list of orders is paged and filtered.

Plain Python: no web framework, no ORM, no serialisation. A broken rule is an ``InvalidOrder``; the HTTP edge
(``orders.api``) answers it as a 422, and ``orders.views`` shows orders to clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from messaging import values

MAX_DESCRIPTION = 500
DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_OFFSET = 2**31 - 1
"""The largest PostgreSQL int4, the bound every list route pages to (``servicekit.params.MAX_OFFSET``)."""


class InvalidOrder(ValueError):
    """A new order or a list query breaks one of the order's rules; the message names the field and the rule."""


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
            raise InvalidOrder("'amount' is required.")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidOrder("'description' must be a string.")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidOrder(f"'description' must be at most {MAX_DESCRIPTION} characters.")
        if description is not None and not _storable(description):
            raise InvalidOrder("'description' must be Unicode text without NUL characters.")
        try:
            amount = values.amount(body["amount"])
        except values.RuleBroken as exc:
            raise InvalidOrder(str(exc)) from None
        return cls(amount=amount, description=description)


@dataclass(frozen=True)
class OrderQuery:
    limit: int
    offset: int
    status: OrderStatus | None

    @classmethod
    def from_args(cls, args: Mapping[str, list[str]]) -> OrderQuery:
        """``args``: every query parameter with the list of its values, as a web framework parses a query string."""
        status = _single(args, "status")
        if status is not None and status not in OrderStatus.__members__:
            raise InvalidOrder(f"'status' must be one of {', '.join(OrderStatus)}.")
        return cls(
            limit=_integer(args, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            offset=_integer(args, "offset", 0, 0, MAX_OFFSET),
            status=OrderStatus(status) if status else None,
        )


def _single(args: Mapping[str, list[str]], name: str) -> str | None:
    """A parameter given twice is refused rather than one copy picked."""
    # Not .get(): Sanic's request.args is a dict of lists whose get() returns only the first value.
    given = args[name] if name in args else []  # noqa: SIM401
    if not given:
        return None
    if len(given) > 1:
        raise InvalidOrder(f"'{name}' may be given once.")
    return given[0]


def _integer(args: Mapping[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = _single(args, name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidOrder(f"'{name}' must be an integer from {low} to {high}.")
    return int(raw)


def _storable(text: str) -> bool:
    """PostgreSQL text cannot hold a NUL character, nor UTF-8 an unpaired surrogate (a JSON escape can make one)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
