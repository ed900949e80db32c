"""Money at the API edge: exact decimals in, two-place decimal strings out. Never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from servicekit.problems import Unprocessable

MAX_AMOUNT = Decimal("1000000000.00")
CENT = Decimal("0.01")


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    """A positive amount with at most two decimal places, up to 1,000,000,000.00, as a JSON number or string."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise Unprocessable(f"'{field}' must be a number or a decimal string.")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise Unprocessable(f"'{field}' is not a decimal number.") from None
    if not amount.is_finite():
        raise Unprocessable(f"'{field}' must be a finite number.")
    if amount <= 0:
        raise Unprocessable(f"'{field}' must be greater than 0.")
    if amount > MAX_AMOUNT:
        raise Unprocessable(f"'{field}' must be at most {MAX_AMOUNT}.")
    if amount != amount.quantize(CENT):
        raise Unprocessable(f"'{field}' must have at most 2 decimal places.")
    return amount.quantize(CENT)


def format_amount(amount: Decimal) -> str:
    return str(amount.quantize(CENT))
