"""Payment results from Kafka, applied to orders. Applying one twice is harmless: only a PENDING order moves."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from messaging.consumer import Handler
from messaging.events import Envelope, PaymentFailed, PaymentSucceeded
from orders import service


async def on_payment_succeeded(envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, PaymentSucceeded)
    async with in_transaction() as conn:
        await service.apply_payment_result(conn, order_id=event.order_id, reason=None)


async def on_payment_failed(envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, PaymentFailed)
    async with in_transaction() as conn:
        await service.apply_payment_result(conn, order_id=event.order_id, reason=event.reason)


HANDLERS: dict[str, Handler] = {
    PaymentSucceeded.TYPE: on_payment_succeeded,
    PaymentFailed.TYPE: on_payment_failed,
}
