"""Payments use cases: accounts, deposits, and the debit of an order, each in one transaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.functions import Count

from messaging.events import Envelope, Event, FailureReason, PaymentFailed, PaymentRequested, PaymentSucceeded
from messaging.inbox import first_delivery
from messaging.outbox import enqueue, outbox_insert
from payments.models import Account, Deposit, Inbox, Outbox, Payment
from servicekit.problems import Conflict, NotFound

log = logging.getLogger("payments.service")

SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"


async def create_account(*, user_id: str) -> Account:
    now = datetime.now(UTC)
    try:
        return await Account.create(user_id=user_id, balance=Decimal("0.00"), created_at=now, updated_at=now)
    except IntegrityError:
        raise Conflict("An account already exists for this user.") from None


async def get_account(*, user_id: str) -> Account:
    account = await Account.get_or_none(user_id=user_id)
    if account is None:
        raise NotFound("No account for this user.")
    return account


async def deposit(conn: BaseDBAsyncClient, *, user_id: str, amount: Decimal) -> Decimal:
    """Add to the balance in one statement (no read-modify-write, so concurrent deposits never lose one)."""
    now = datetime.now(UTC)
    updated = await Account.filter(user_id=user_id).using_db(conn).update(balance=F("balance") + amount, updated_at=now)
    if not updated:
        raise NotFound("No account for this user.")
    await Deposit.create(user_id=user_id, amount=amount, created_at=now, using_db=conn)
    account = await Account.get(user_id=user_id).using_db(conn)
    log.info("deposit of %s for %s", amount, user_id)
    return account.balance


async def settle_payment_request(conn: BaseDBAsyncClient, envelope: Envelope, results_topic: str) -> None:
    """Decide one payment command, exactly once per order, and publish the decision through the outbox, in the
    caller's transaction.

    The inbox makes a redelivered message a no-op; the ledger's primary key makes a second command for the same
    order (under a new message id) unable to debit again: it re-announces the decision already taken.
    """
    command = envelope.event
    assert isinstance(command, PaymentRequested)
    outcome = await _pay_once(conn, envelope, command, results_topic)
    if not outcome["first_delivery"]:
        log.info("payment command %s for order %s already handled", envelope.message_id, command.order_id)
        return
    if outcome["debited"]:
        log.info("order %s paid: %s debited from %s", command.order_id, command.amount, command.user_id)
        return
    result = await _refuse(conn, command) if outcome["claimed"] else await _decision_already_taken(conn, command)
    await enqueue(Outbox, conn, results_topic, command.user_id, Envelope(result))


async def _pay_once(
    conn: BaseDBAsyncClient, envelope: Envelope, command: PaymentRequested, results_topic: str
) -> dict[str, bool]:
    """The common case in one statement: record the delivery, claim the order in the ledger, debit, and enqueue the
    success; each step only if the one before it happened.

    Claiming the ledger row before the debit makes a concurrent command for the same order wait on that row, then
    find it taken. The debit cannot overdraw, whatever runs beside it.
    """
    paid = Envelope(PaymentSucceeded(order_id=command.order_id, user_id=command.user_id, amount=command.amount))
    announce, announce_parameters = outbox_insert(
        Outbox, results_topic, command.user_id, paid, first_parameter=5, only_if="EXISTS (SELECT FROM debited)"
    )
    (outcome,) = await conn.execute_query_dict(
        f"WITH first_delivery AS ({first_delivery(Inbox)}), "
        "claimed AS (INSERT INTO payments (order_id, user_id, amount, status, message_id, created_at) "
        "SELECT $2, $3, $4, 'SUCCEEDED', message_id, now() FROM first_delivery "
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id), "
        "debited AS (UPDATE accounts SET balance = balance - $4, updated_at = now() "
        "WHERE user_id = $3 AND balance >= $4 AND EXISTS (SELECT FROM claimed) RETURNING user_id), "
        f"announced AS ({announce}) "
        "SELECT EXISTS (SELECT FROM first_delivery) AS first_delivery, EXISTS (SELECT FROM claimed) AS claimed, "
        "EXISTS (SELECT FROM debited) AS debited",
        [envelope.message_id, command.order_id, command.user_id, command.amount, *announce_parameters],
    )
    return outcome


async def _refuse(conn: BaseDBAsyncClient, command: PaymentRequested) -> Event:
    """The order was claimed but the debit found too little money, or no account at all."""
    has_account = await Account.filter(user_id=command.user_id).using_db(conn).exists()
    reason = FailureReason.INSUFFICIENT_FUNDS if has_account else FailureReason.ACCOUNT_NOT_FOUND
    await Payment.filter(order_id=command.order_id).using_db(conn).update(status=FAILED, failure_reason=reason)
    log.info("order %s failed: %s", command.order_id, reason)
    return PaymentFailed(order_id=command.order_id, user_id=command.user_id, amount=command.amount, reason=reason)


async def _decision_already_taken(conn: BaseDBAsyncClient, command: PaymentRequested) -> Event:
    payment = await Payment.get(order_id=command.order_id).using_db(conn)
    log.info("order %s was already decided (%s); not debiting again", command.order_id, payment.status)
    if payment.status == SUCCEEDED:
        return PaymentSucceeded(order_id=payment.order_id, user_id=payment.user_id, amount=payment.amount)
    return PaymentFailed(
        order_id=payment.order_id,
        user_id=payment.user_id,
        amount=payment.amount,
        reason=FailureReason(payment.failure_reason),
    )


async def summary() -> dict[str, Any]:
    """Figures for the Operations page."""
    rows = await Payment.all().group_by("status").annotate(n=Count("order_id")).values("status", "n")
    return {"payments_by_status": {row["status"]: row["n"] for row in rows}, "accounts": await Account.all().count()}
