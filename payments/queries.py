"""The Payments service's SQL for the per-order path: statements built with the composer (``messaging.sql``), rows
typed. Each decides one command in one round trip; everything else goes through the ORM (``payments.models``)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import NamedTuple

from messaging.sql import Identifier, Sql


class PayOnce(NamedTuple):
    first_delivery: bool
    """False: the inbox had the message already, and nothing else happened."""
    claimed: bool
    """The order had no ledger row yet, and now has this command's."""
    debited: bool


def pay_once(*, delivery: Sql, order_id: uuid.UUID, user_id: str, amount: Decimal, announce: Sql) -> Sql:
    """Record the ``delivery`` (the inbox's part), claim the order in the ledger, debit, and ``announce`` the success
    (the outbox's part, on condition of the debit): each step only if the one before it happened.

    Claiming the ledger row before the debit makes a concurrent command for the same order wait on that row, then
    find it taken. The debit cannot overdraw, whatever runs beside it."""
    return Sql(
        "WITH first_delivery AS ({delivery}), "
        "claimed AS (INSERT INTO payments (order_id, user_id, amount, status, message_id, created_at) "
        "SELECT {order_id}, {user_id}, {amount}, 'SUCCEEDED', message_id, now() FROM first_delivery "
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id), "
        "debited AS (UPDATE accounts SET balance = balance - {amount}, updated_at = now() "
        "WHERE user_id = {user_id} AND balance >= {amount} AND EXISTS (SELECT FROM claimed) RETURNING user_id), "
        "announced AS ({announce}) "
        "SELECT EXISTS (SELECT FROM first_delivery) AS first_delivery, EXISTS (SELECT FROM claimed) AS claimed, "
        "EXISTS (SELECT FROM debited) AS debited",
        delivery=delivery,
        order_id=order_id,
        user_id=user_id,
        amount=amount,
        announce=announce,
    )


class ExpireOnce(NamedTuple):
    first_delivery: bool
    claimed: bool
    """The order had no decision yet, and is now FAILED with PAYMENT_TIMEOUT."""


def expire_once(*, delivery: Sql, order_id: uuid.UUID, user_id: str, amount: Decimal, announce: Sql) -> Sql:
    """Record the ``delivery``, claim the order in the ledger as FAILED (PAYMENT_TIMEOUT) only if it has no decision
    yet, and ``announce`` that (on condition of the claim)."""
    return Sql(
        "WITH first_delivery AS ({delivery}), "
        "claimed AS (INSERT INTO payments (order_id, user_id, amount, status, failure_reason, message_id, created_at) "
        "SELECT {order_id}, {user_id}, {amount}, 'FAILED', 'PAYMENT_TIMEOUT', message_id, now() FROM first_delivery "
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id), "
        "announced AS ({announce}) "
        "SELECT EXISTS (SELECT FROM first_delivery) AS first_delivery, EXISTS (SELECT FROM claimed) AS claimed",
        delivery=delivery,
        order_id=order_id,
        user_id=user_id,
        amount=amount,
        announce=announce,
    )


def ledger_condition(step: str) -> Sql:
    """The condition of an event that announces one outcome only: that step of the statement happened."""
    return Sql("EXISTS (SELECT FROM {step})", step=Identifier(step))
