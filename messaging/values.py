"""The rules every value that crosses a service's edge obeys, whether it comes in an HTTP request or in an event:
money and user ids. One definition, so that an event can never carry what the API would have refused (and the
database would refuse too)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_AMOUNT = Decimal("1000000000.00")
CENT = Decimal("0.01")
# ASCII digits only: Decimal() also takes "1_000" and other scripts' digits ("١٢"), which nobody means as money.
DECIMAL_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
USER_ID_RULE = "1-64 characters of A-Z, a-z, 0-9, '_' or '-'"


class RuleBroken(ValueError):
    """A value breaks one of the rules; the message names the field and the rule."""


def amount(value: Any, field: str = "amount") -> Decimal:
    """A positive amount with at most two decimal places, up to 1,000,000,000.00, given as a decimal string, an
    integer or a Decimal (never a float or a bool); returned with exactly two places."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise RuleBroken(f"'{field}' must be a number or a decimal string.")
    if isinstance(value, str) and not DECIMAL_TEXT.fullmatch(value):
        raise RuleBroken(f"'{field}' is not a decimal number.")
    try:
        parsed = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise RuleBroken(f"'{field}' is not a decimal number.") from None
    if not parsed.is_finite():
        raise RuleBroken(f"'{field}' must be a finite number.")
    if parsed <= 0:
        raise RuleBroken(f"'{field}' must be greater than 0.")
    if parsed > MAX_AMOUNT:
        raise RuleBroken(f"'{field}' must be at most {MAX_AMOUNT}.")
    if parsed != parsed.quantize(CENT):
        raise RuleBroken(f"'{field}' must have at most 2 decimal places.")
    return parsed.quantize(CENT)


def user_id(value: Any, field: str = "user_id") -> str:
    if not isinstance(value, str) or not USER_ID.fullmatch(value):
        raise RuleBroken(f"'{field}' must be {USER_ID_RULE}.")
    return value


def format_amount(value: Decimal) -> str:
    return str(value.quantize(CENT))
