"""Tortoise models of the Payments database. Tables are created by migrations, never by the ORM."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from messaging import console, dead_letters, retries
from messaging.inbox import InboxMessage
from messaging.outbox import OutboxMessage
from servicekit.service.idempotency import IdempotencyKey


class Account(Model):
    user_id = fields.CharField(max_length=64, primary_key=True)
    balance = fields.DecimalField(max_digits=18, decimal_places=2)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "accounts"


class Deposit(Model):
    id = fields.BigIntField(primary_key=True)
    user_id = fields.CharField(max_length=64)
    amount = fields.DecimalField(max_digits=12, decimal_places=2)
    created_at = fields.DatetimeField()

    class Meta:
        table = "deposits"


class Payment(Model):
    """The ledger: one row per order, ever (primary key), holding the one decision taken for it."""

    order_id = fields.UUIDField(primary_key=True)
    user_id = fields.CharField(max_length=64)
    amount = fields.DecimalField(max_digits=12, decimal_places=2)
    status = fields.CharField(max_length=16)
    failure_reason = fields.CharField(max_length=32, null=True)
    message_id = fields.UUIDField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "payments"


class Outbox(OutboxMessage):
    class Meta:
        table = "outbox"


class Inbox(InboxMessage):
    class Meta:
        table = "inbox"


class PaymentsIdempotencyKey(IdempotencyKey):
    class Meta:
        table = "idempotency_keys"


class MessageRetry(retries.MessageRetry):
    class Meta:
        table = "message_retries"


class DeadLetter(dead_letters.DeadLetter):
    class Meta:
        table = "dead_letters"


class OperatorAction(console.OperatorAction):
    class Meta:
        table = "operator_actions"
