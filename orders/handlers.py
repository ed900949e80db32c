"""Payment results from Kafka, applied to orders in the transaction the consumer gives them. Applying one twice
is harmless: only a PENDING order moves."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from messaging.consumer import Handler
from messaging.events import Envelope, PaymentFailed, PaymentSucceeded
from orders import service


async def on_payment_results(envelopes: list[Envelope], conn: BaseDBAsyncClient) -> None:
    """Successes and failures alike, a whole run of them in one statement."""
    await service.apply_payment_results(conn, [_outcome(envelope) for envelope in envelopes])


def _outcome(envelope: Envelope) -> service.PaymentOutcome:
    event = envelope.event
    if isinstance(event, PaymentFailed):
        return service.PaymentOutcome(event.order_id, event.reason)
    assert isinstance(event, PaymentSucceeded)
    return service.PaymentOutcome(event.order_id, None)


HANDLERS: dict[str, Handler] = {
    PaymentSucceeded.TYPE: on_payment_results,
    PaymentFailed.TYPE: on_payment_results,
}
