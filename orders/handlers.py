"""Payment results from Kafka, applied to orders in the transaction the consumer gives them. Applying one twice
is harmless: only a PENDING order moves."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from messaging.consumer import Handler
from messaging.events import Envelope, PaymentFailed, PaymentSucceeded
from orders import service


async def on_payment_succeeded(envelope: Envelope, conn: BaseDBAsyncClient) -> None:
    event = envelope.event
    assert isinstance(event, PaymentSucceeded)
    await service.apply_payment_result(conn, order_id=event.order_id, reason=None)


async def on_payment_failed(envelope: Envelope, conn: BaseDBAsyncClient) -> None:
    event = envelope.event
    assert isinstance(event, PaymentFailed)
    await service.apply_payment_result(conn, order_id=event.order_id, reason=event.reason)


HANDLERS: dict[str, Handler] = {
    PaymentSucceeded.TYPE: on_payment_succeeded,
    PaymentFailed.TYPE: on_payment_failed,
}
