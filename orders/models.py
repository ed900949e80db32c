"""Tortoise models of the Orders database. Tables are created by migrations, never by the ORM."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from messaging import console, dead_letters, retries
from messaging.outbox import OutboxMessage
from orders.domain import OrderStatus
from servicekit.service.idempotency import IdempotencyKey


class Order(Model):
    id = fields.UUIDField(primary_key=True)
    user_id = fields.CharField(max_length=64)
    amount = fields.DecimalField(max_digits=12, decimal_places=2)
    description = fields.CharField(max_length=500, null=True)
    status = fields.CharEnumField(OrderStatus, max_length=16)
    failure_reason = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    expiry_requested_at = fields.DatetimeField(null=True)
    """When Orders last asked Payments to close it past its payment deadline."""

    class Meta:
        table = "orders"


class Outbox(OutboxMessage):
    class Meta:
        table = "outbox"


class OrdersIdempotencyKey(IdempotencyKey):
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
