"""The statement composer numbers parameters itself, and the per-order statements come out as one statement each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

import pytest

from messaging.events import Envelope, PaymentSucceeded
from messaging.inbox import first_delivery
from messaging.outbox import lane_of, outbox_row
from messaging.sql import Identifier, Sql, typed
from orders import queries as order_queries
from orders.models import Outbox as OrdersOutbox
from payments import queries as payment_queries
from payments.models import Inbox, Outbox


def test_values_are_numbered_in_the_order_they_appear() -> None:
    statement = Sql("UPDATE t SET a = {a} WHERE b = {b} AND c = {c}", c=3, a=1, b=2)

    assert statement.render() == ("UPDATE t SET a = $1 WHERE b = $2 AND c = $3", [1, 2, 3])


def test_a_value_named_twice_in_one_text_is_one_parameter() -> None:
    statement = Sql("SELECT {x} + {y}, {x} * 2", x=5, y=6)

    assert statement.render() == ("SELECT $1 + $2, $1 * 2", [5, 6])


def test_a_part_brings_its_own_values_and_never_shares_a_number_with_its_host() -> None:
    part = Sql("INSERT INTO log VALUES ({x})", x="inner")
    statement = Sql("WITH logged AS ({part}) SELECT {x}, {y}", part=part, x="outer", y=7)

    assert statement.render() == ("WITH logged AS (INSERT INTO log VALUES ($1)) SELECT $2, $3", ["inner", "outer", 7])


def test_the_same_part_inlined_twice_is_one_set_of_parameters() -> None:
    part = Sql("v = {v}", v=1)

    assert Sql("{a} OR {b}", a=part, b=part).render() == ("v = $1 OR v = $1", [1])


def test_identifiers_are_quoted_not_bound() -> None:
    statement = Sql("SELECT * FROM {table} WHERE id = {id}", table=Identifier('odd"name'), id=1)

    assert statement.render() == ('SELECT * FROM "odd""name" WHERE id = $1', [1])


def test_a_placeholder_without_a_value_or_a_value_without_a_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="no value"):
        Sql("SELECT {a}, {b}", a=1)
    with pytest.raises(ValueError, match="not used"):
        Sql("SELECT {a}", a=1, b=2)


def test_casts_and_other_braces_are_left_alone() -> None:
    assert Sql("SELECT {x}::uuid[], '{}'::jsonb", x=[]).render() == ("SELECT $1::uuid[], '{}'::jsonb", [[]])


class Pair(NamedTuple):
    first: int
    second: str


def test_a_row_is_built_only_from_exactly_its_fields() -> None:
    assert typed(Pair, {"second": "b", "first": 1}) == Pair(1, "b")
    with pytest.raises(TypeError, match="Pair"):
        typed(Pair, {"first": 1})
    with pytest.raises(TypeError, match="Pair"):
        typed(Pair, {"first": 1, "second": "b", "third": None})


def test_the_outbox_row_binds_the_envelope_and_its_lane() -> None:
    envelope = Envelope(PaymentSucceeded(order_id=uuid.uuid4(), user_id="u1", amount=Decimal("2.50")))

    text, arguments = outbox_row(Outbox, "results", "u1", envelope).render()

    assert text.startswith('INSERT INTO "outbox" (message_id, topic, key, lane, payload, created_at) SELECT $1')
    assert arguments == [envelope.message_id, "results", "u1", lane_of("u1"), envelope.to_json()]


def test_a_payment_is_decided_in_one_statement_with_each_value_bound_once() -> None:
    order_id, message_id = uuid.uuid4(), uuid.uuid4()
    paid = Envelope(PaymentSucceeded(order_id=order_id, user_id="u1", amount=Decimal("4.00")))
    statement = payment_queries.pay_once(
        delivery=first_delivery(Inbox, message_id),
        order_id=order_id,
        user_id="u1",
        amount=Decimal("4.00"),
        announce=outbox_row(Outbox, "results", "u1", paid, only_if=payment_queries.ledger_condition("debited")),
    )

    text, arguments = statement.render()

    assert text.count(";") == 0
    assert arguments[:4] == [message_id, order_id, "u1", Decimal("4.00")]
    assert len(arguments) == 9
    assert 'WHERE EXISTS (SELECT FROM "debited")' in text
    assert "balance - $4" in text
    assert "balance >= $4" in text


def test_an_order_and_its_command_are_one_statement() -> None:
    command = outbox_row(OrdersOutbox, "commands", "u1", Envelope(PaymentSucceeded(uuid.uuid4(), "u1", Decimal(1))))
    statement = order_queries.insert_order(
        order_id=uuid.uuid4(),
        user_id="u1",
        amount=Decimal(1),
        description=None,
        status="PENDING",
        at=datetime.now(UTC),
        then=command,
    )

    text, arguments = statement.render()

    assert text.startswith("WITH new_order AS (INSERT INTO orders")
    assert "VALUES ($1, $2, $3, $4, $5, $6, $6))" in text
    assert len(arguments) == 11
