"""The order's rules as the domain states them: what a new order may carry, how a list is paged and filtered, and
the states an order can be in. Each refusal is an ``InvalidOrder`` whose message is the ``detail`` of the 422 problem
a client gets back (tests/unit/test_validation.py checks the responses). The domain is plain Python: importing it
loads no web framework and no ORM."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sanic.request import RequestParameters

from orders.domain import MAX_DESCRIPTION, MAX_OFFSET, InvalidOrder, NewOrder, OrderQuery, OrderStatus
from orders.views import new_order_view
from servicekit import params

ROOT = Path(__file__).resolve().parents[2]


def refused(body: dict) -> InvalidOrder:
    with pytest.raises(InvalidOrder) as caught:
        NewOrder.from_json(body)
    return caught.value


def query_refused(query: dict[str, list[str]]) -> str:
    """``query``: every parameter with the list of its values, as the web framework parses a query string."""
    with pytest.raises(InvalidOrder) as caught:
        OrderQuery.from_args(query)
    return str(caught.value)


# The domain's dependencies


def test_importing_the_domain_loads_neither_the_web_framework_nor_the_orm() -> None:
    code = (
        "import json, sys, orders.domain; print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(run.stdout))
    assert "orders" in loaded
    assert not loaded & {"sanic", "tortoise", "servicekit", "asyncpg"}


def test_lists_page_to_the_same_bound_as_every_other_list_route() -> None:
    assert MAX_OFFSET == params.MAX_OFFSET


# NewOrder.from_json


@pytest.mark.parametrize(
    ("given", "amount"),
    [
        ("12.5", Decimal("12.50")),
        (Decimal("12.5"), Decimal("12.50")),
        (7, Decimal("7.00")),
        (" 0.01 ", Decimal("0.01")),
    ],
)
def test_a_new_order_keeps_its_amount_exactly_with_two_places(given: object, amount: Decimal) -> None:
    order = NewOrder.from_json({"amount": given})
    assert order.amount == amount
    assert order.amount.as_tuple().exponent == -2


def test_an_order_without_a_description_has_none() -> None:
    assert NewOrder.from_json({"amount": "1.00"}).description is None
    assert NewOrder.from_json({"amount": "1.00", "description": None}).description is None


def test_an_amount_is_required() -> None:
    assert str(refused({"description": "a gift"})) == "'amount' is required."


@pytest.mark.parametrize("amount", [None, "", "0", "-1", "0.001", "1000000000.01", 1.5, True, [1], "NaN"])
def test_an_amount_breaking_a_money_rule_is_a_422_naming_the_amount(amount: object) -> None:
    assert "'amount'" in str(refused({"amount": amount}))


@pytest.mark.parametrize("description", [5, 1.5, True, ["a"], {"text": "a"}])
def test_a_description_must_be_a_string(description: object) -> None:
    assert str(refused({"amount": 1, "description": description})) == "'description' must be a string."


@pytest.mark.parametrize("character", ["x", "é", "\U0001f381"])
def test_a_description_of_the_maximum_length_in_characters_is_kept(character: str) -> None:
    """The limit counts characters, not bytes: 500 emoji are 2,000 bytes of UTF-8 and still fit."""
    description = character * MAX_DESCRIPTION
    assert NewOrder.from_json({"amount": 1, "description": description}).description == description


def test_a_description_one_character_too_long_is_refused() -> None:
    detail = str(refused({"amount": 1, "description": "x" * (MAX_DESCRIPTION + 1)}))
    assert detail == "'description' must be at most 500 characters."


@pytest.mark.parametrize(
    "description", ["nul\x00inside", "\x00", "lone \ud800 surrogate", "\udfff"], ids=["nul", "only nul", "high", "low"]
)
def test_a_description_the_database_cannot_store_is_refused(description: str) -> None:
    """PostgreSQL text holds no NUL and UTF-8 no unpaired surrogate; both can arrive as JSON escapes."""
    assert "Unicode text without NUL characters" in str(refused({"amount": 1, "description": description}))


def test_equal_amounts_make_the_same_request_however_they_were_written() -> None:
    """What an Idempotency-Key's fingerprint is taken of: 2.5, "2.50" and "2.5" are one request."""
    shapes = [
        new_order_view(NewOrder.from_json({"amount": given, "description": "d"}))
        for given in (Decimal("2.5"), "2.50", "2.5")
    ]
    assert shapes == [{"amount": "2.50", "description": "d"}] * 3


# OrderQuery.from_args


def test_a_list_without_parameters_is_the_first_page_of_every_status() -> None:
    query = OrderQuery.from_args({})
    assert (query.limit, query.offset, query.status) == (50, 0, None)


@pytest.mark.parametrize("limit", ["1", "50", "200"])
def test_a_limit_from_1_to_200_is_taken(limit: str) -> None:
    assert OrderQuery.from_args({"limit": [limit]}).limit == int(limit)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "+5", " 5", "5.0", "1e2", "ten", "\u0665", "\u00b2"])
def test_a_limit_outside_1_to_200_or_not_plain_digits_is_refused(limit: str) -> None:
    assert query_refused({"limit": [limit]}) == "'limit' must be an integer from 1 to 200."


@pytest.mark.parametrize("offset", ["0", "1", str(MAX_OFFSET)])
def test_an_offset_from_0_up_to_the_largest_int4_is_taken(offset: str) -> None:
    assert OrderQuery.from_args({"offset": [offset]}).offset == int(offset)


@pytest.mark.parametrize("offset", ["-1", str(MAX_OFFSET + 1), "9" * 40, "1.5", "x"])
def test_an_offset_out_of_range_is_refused(offset: str) -> None:
    assert query_refused({"offset": [offset]}) == f"'offset' must be an integer from 0 to {MAX_OFFSET}."


@pytest.mark.parametrize("status", list(OrderStatus))
def test_a_list_can_be_filtered_by_each_status(status: OrderStatus) -> None:
    assert OrderQuery.from_args({"status": [status.value]}).status is status


@pytest.mark.parametrize("status", ["paid", "Paid", "SHIPPED", " PAID"])
def test_an_unknown_or_differently_spelled_status_is_refused(status: str) -> None:
    assert query_refused({"status": [status]}) == "'status' must be one of PENDING, PAID, FAILED."


@pytest.mark.parametrize("name", ["limit", "offset", "status"])
def test_a_parameter_given_twice_is_refused_rather_than_one_copy_picked(name: str) -> None:
    values = {"limit": ["1", "2"], "offset": ["0", "0"], "status": ["PAID", "FAILED"]}[name]
    assert query_refused({name: values}) == f"'{name}' may be given once."


def test_the_query_parameters_sanic_hands_over_are_read_alike() -> None:
    """``request.args`` is a dict of lists whose ``get`` gives only the first value: a repeat must still be seen."""
    assert OrderQuery.from_args(RequestParameters({"limit": ["10"]})).limit == 10
    with pytest.raises(InvalidOrder, match=r"'limit' may be given once\."):
        OrderQuery.from_args(RequestParameters({"limit": ["1", "2"]}))


def test_parameters_are_read_together() -> None:
    query = OrderQuery.from_args({"limit": ["10"], "offset": ["20"], "status": ["FAILED"]})
    assert (query.limit, query.offset, query.status) == (10, 20, OrderStatus.FAILED)


# OrderStatus


def test_an_order_is_pending_paid_or_failed_and_shown_by_that_name() -> None:
    assert [str(status) for status in OrderStatus] == ["PENDING", "PAID", "FAILED"]
    assert all(status == status.value == status.name for status in OrderStatus)
