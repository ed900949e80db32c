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
from messaging.inbox import record_once
from messaging.outbox import enqueue
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
    if not await record_once(Inbox, conn, envelope.message_id):
        log.info("payment command %s for order %s already handled", envelope.message_id, command.order_id)
        return
    if await _claim_order(conn, command, envelope):
        result = await _debit(conn, command)
    else:
        result = await _decision_already_taken(conn, command)
    await enqueue(Outbox, conn, results_topic, command.user_id, Envelope(result))


async def _claim_order(conn: BaseDBAsyncClient, command: PaymentRequested, envelope: Envelope) -> bool:
    """Insert the ledger row first: a concurrent command for the same order waits here, then finds it taken."""
    claimed = await conn.execute_query_dict(
        "INSERT INTO payments (order_id, user_id, amount, status, message_id, created_at) "
        "VALUES ($1, $2, $3, 'SUCCEEDED', $4, now()) ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
        [command.order_id, command.user_id, command.amount, envelope.message_id],
    )
    return bool(claimed)


async def _debit(conn: BaseDBAsyncClient, command: PaymentRequested) -> Event:
    # The one statement that moves money: it cannot overdraw, whatever runs beside it.
    debited, _ = await conn.execute_query(
        "UPDATE accounts SET balance = balance - $1, updated_at = now() WHERE user_id = $2 AND balance >= $1",
        [command.amount, command.user_id],
    )
    if debited:
        log.info("order %s paid: %s debited from %s", command.order_id, command.amount, command.user_id)
        return PaymentSucceeded(order_id=command.order_id, user_id=command.user_id, amount=command.amount)
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
