"""Money at the API edge: exact decimals in, two-place decimal strings out. Never a float. The rules are the ones
events obey too (messaging.values)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from messaging import values
from messaging.values import format_amount
from servicekit.problems import Unprocessable

__all__ = ["format_amount", "parse_amount"]


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    """A positive amount with at most two decimal places, up to 1,000,000,000.00, as a JSON number or string."""
    try:
        return values.amount(value, field)
    except values.RuleBroken as exc:
        raise Unprocessable(str(exc)) from None
