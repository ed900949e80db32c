"""Query parameters, checked the same way by every route: given at most once, integers within their bounds."""

from __future__ import annotations

from sanic.request import RequestParameters

from servicekit.problems import Unprocessable

MAX_OFFSET = 2**31 - 1
OPS_DEFAULT_PAGE, OPS_MAX_PAGE = 50, 200
OPS_MAX_OFFSET = 10_000
"""How deep the operator lists page: the gateway merges both services' first ``offset + limit`` items, so each
service serves up to ``OPS_MAX_OFFSET + OPS_MAX_PAGE`` to it."""


def single(args: RequestParameters, name: str) -> str | None:
    values = args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise Unprocessable(f"'{name}' may be given once.")
    return values[0]


def integer(args: RequestParameters, name: str, default: int, low: int, high: int) -> int:
    raw = single(args, name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise Unprocessable(f"'{name}' must be an integer from {low} to {high}.")
    return int(raw)


def one_of(args: RequestParameters, name: str, allowed: tuple[str, ...]) -> str | None:
    value = single(args, name)
    if value is not None and value not in allowed:
        raise Unprocessable(f"'{name}' must be one of {', '.join(allowed)}.")
    return value
