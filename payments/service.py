"""Payments use cases: accounts, deposits, and the debit of an order. Creating an account is one statement of its
own; a deposit and each decision about an order take the unit of work they run in (``messaging.unit_of_work``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from messaging.counting import count, count_by
from messaging.events import (
    Envelope,
    FailureReason,
    PaymentExpireRequested,
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
)
from messaging.inbox import first_delivery, seen_again
from messaging.outbox import enqueue, outbox_row
from messaging.unit_of_work import UnitOfWork
from payments import queries
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


async def deposit(work: UnitOfWork, *, user_id: str, amount: Decimal) -> Decimal:
    """Add to the balance in one statement (no read-modify-write, so concurrent deposits never lose one)."""
    now = datetime.now(UTC)
    updated = (
        await Account.filter(user_id=user_id).using_db(work.conn).update(balance=F("balance") + amount, updated_at=now)
    )
    if not updated:
        raise NotFound("No account for this user.")
    await Deposit.create(user_id=user_id, amount=amount, created_at=now, using_db=work.conn)
    account = await Account.get(user_id=user_id).using_db(work.conn)
    log.info("deposit of %s for %s", amount, user_id)
    return account.balance


async def settle_payment_request(work: UnitOfWork, envelope: Envelope, results_topic: str) -> str | None:
    """Decide one payment command, exactly once per order, and publish the decision through the outbox, in the
    caller's transaction. Returns why the command was refused, if it was.

    The inbox makes a redelivered message a no-op; the ledger's primary key makes a second command for the same
    order (under a new message id) unable to debit again: it re-announces the decision already taken, unless the
    command names other money than the ledger holds for that order (then it is refused).
    """
    command = envelope.event
    assert isinstance(command, PaymentRequested)
    outcome = await _pay_once(work, envelope, command, results_topic)
    if not outcome.first_delivery:
        seen_again(Inbox)
        log.info("payment command %s for order %s already handled", envelope.message_id, command.order_id)
        return None
    if outcome.debited:
        log.info("order %s paid: %s debited from %s", command.order_id, command.amount, command.user_id)
        return None
    if outcome.claimed:
        await _announce(work, results_topic, await _refuse(work, command))
        return None
    return await _decision_already_taken(work, command, results_topic)


async def settle_expiry_request(work: UnitOfWork, envelope: Envelope, results_topic: str) -> str | None:
    """Close an order past its payment deadline: in the ledger, FAILED with PAYMENT_TIMEOUT only if the order has
    no decision yet (then no payment command can debit it any more: the ledger's key holds), and announce whichever
    decision stands, in the caller's transaction. Returns why the request was refused, if it was."""
    request = envelope.event
    assert isinstance(request, PaymentExpireRequested)
    timed_out = PaymentFailed(request.order_id, request.user_id, request.amount, FailureReason.PAYMENT_TIMEOUT)
    statement = queries.expire_once(
        delivery=first_delivery(Inbox, envelope.message_id),
        order_id=request.order_id,
        user_id=request.user_id,
        amount=request.amount,
        announce=outbox_row(
            Outbox, results_topic, request.user_id, Envelope(timed_out), only_if=queries.ledger_condition("claimed")
        ),
    )
    outcome = await work.fetch_one(statement, queries.ExpireOnce)
    if not outcome.first_delivery:
        seen_again(Inbox)
        log.info("expiry request %s for order %s already handled", envelope.message_id, request.order_id)
        return None
    if outcome.claimed:
        log.info("order %s failed: %s", request.order_id, FailureReason.PAYMENT_TIMEOUT)
        return None
    return await _decision_already_taken(work, request, results_topic)


async def _pay_once(
    work: UnitOfWork, envelope: Envelope, command: PaymentRequested, results_topic: str
) -> queries.PayOnce:
    """The common case in one statement (``queries.pay_once``): delivery recorded, order claimed, debit, success
    announced."""
    paid = Envelope(PaymentSucceeded(order_id=command.order_id, user_id=command.user_id, amount=command.amount))
    statement = queries.pay_once(
        delivery=first_delivery(Inbox, envelope.message_id),
        order_id=command.order_id,
        user_id=command.user_id,
        amount=command.amount,
        announce=outbox_row(Outbox, results_topic, command.user_id, paid, only_if=queries.ledger_condition("debited")),
    )
    return await work.fetch_one(statement, queries.PayOnce)


async def _refuse(work: UnitOfWork, command: PaymentRequested) -> PaymentFailed:
    """The order was claimed but the debit found too little money, or no account at all."""
    has_account = await Account.filter(user_id=command.user_id).using_db(work.conn).exists()
    reason = FailureReason.INSUFFICIENT_FUNDS if has_account else FailureReason.ACCOUNT_NOT_FOUND
    await Payment.filter(order_id=command.order_id).using_db(work.conn).update(status=FAILED, failure_reason=reason)
    log.info("order %s failed: %s", command.order_id, reason)
    return PaymentFailed(order_id=command.order_id, user_id=command.user_id, amount=command.amount, reason=reason)


async def _decision_already_taken(
    work: UnitOfWork, asked: PaymentRequested | PaymentExpireRequested, results_topic: str
) -> str | None:
    """Announce again the decision the ledger holds for the order, unless ``asked`` is about other money than the
    ledger's (another user or amount): that is refused, never answered with a decision about different money."""
    payment = await Payment.get(order_id=asked.order_id).using_db(work.conn)
    if (payment.user_id, payment.amount) != (asked.user_id, asked.amount):
        return (
            f"order {asked.order_id} is in the ledger as {payment.amount} for {payment.user_id}, "
            f"not {asked.amount} for {asked.user_id}"
        )
    log.info("order %s was already decided (%s); not debiting again", asked.order_id, payment.status)
    decision: PaymentSucceeded | PaymentFailed
    if payment.status == SUCCEEDED:
        decision = PaymentSucceeded(order_id=payment.order_id, user_id=payment.user_id, amount=payment.amount)
    else:
        reason = FailureReason(payment.failure_reason)
        decision = PaymentFailed(payment.order_id, payment.user_id, payment.amount, reason)
    await _announce(work, results_topic, decision)
    return None


async def _announce(work: UnitOfWork, results_topic: str, decision: PaymentSucceeded | PaymentFailed) -> None:
    await enqueue(Outbox, work, results_topic, decision.user_id, Envelope(decision))


async def summary() -> dict[str, Any]:
    """Figures for the Operations page, each costing the same however large the ledger (``messaging.counting``)."""
    conn = connections.get("default")
    by_status, exact = await count_by(conn, "payments", "status", (SUCCEEDED, FAILED))
    accounts = await count(conn, "accounts")
    estimates = [name for name, known in (("payments_by_status", exact), ("accounts", accounts.exact)) if not known]
    return {"payments_by_status": by_status, "accounts": accounts.value, "estimates": estimates}
