"""Arbitrary bodies and header values on every route, through the gateway: never a 5xx, and a rejected request
never changes anything."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.local import LocalStack

ROUTES = [
    ("POST", "/orders"),
    ("GET", "/orders"),
    ("GET", "/orders/{id}"),
    ("POST", "/accounts"),
    ("GET", "/accounts/balance"),
    ("POST", "/accounts/deposit"),
]
# Numbers as JSON text, so that they can be larger, smaller and longer than any float: huge exponents included.
json_numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,25})?", fullmatch=True)
# Money as text in every script's digits, grouped, signed, blank-padded.
money_text = st.text(st.characters(categories=["Nd"]) | st.sampled_from("0123456789_.,+-eE "), max_size=16)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | money_text,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner, max_size=8),
    max_leaves=40,
)
nested = st.tuples(st.integers(min_value=1, max_value=5000), st.sampled_from(["[]", '{"a":}'])).map(
    lambda depth_and_kind: _nested(*depth_and_kind)
)
bodies = st.one_of(
    st.binary(max_size=256),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"amount": json_values}, optional={"description": json_values}).map(json.dumps),
    json_numbers.map(lambda number: f'{{"amount": {number}}}'),
    nested.map(lambda inner: f'{{"amount": {inner}}}'),
)
# Leading or trailing blanks are not representable in an HTTP header value.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70).map(str.strip)
headers = st.fixed_dictionaries(
    {}, optional={"X-User-Id": header_text, "Idempotency-Key": header_text, "X-Request-Id": header_text}
)
paths = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), max_size=40)


def _nested(depth: int, kind: str) -> str:
    """A JSON value ``depth`` levels deep: arrays in arrays, or objects in objects."""
    if kind == "[]":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "null" + "}" * depth


async def _state(urls: dict[str, str]) -> tuple:
    orders = await asyncpg.connect(urls["orders"])
    payments = await asyncpg.connect(urls["payments"])
    try:
        return (
            await orders.fetchval("SELECT count(*) FROM orders"),
            await payments.fetchval("SELECT count(*) FROM accounts"),
            await payments.fetchval("SELECT count(*) FROM deposits"),
            await payments.fetchval("SELECT coalesce(sum(balance), 0) FROM accounts"),
        )
    finally:
        await orders.close()
        await payments.close()


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=bodies, header_values=headers, order_id=paths)
def test_no_input_causes_a_5xx_or_a_change_when_rejected(
    stack: LocalStack, route: tuple[str, str], body: str | bytes, header_values: dict, order_id: str
) -> None:
    method, path = route
    before = asyncio.run(_state(stack.database_urls))

    response = httpx.request(
        method, stack.gateway_url + path.format(id=order_id), content=body, headers=header_values, timeout=30
    )

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert asyncio.run(_state(stack.database_urls)) == before
