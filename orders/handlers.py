"""Payment results from Kafka, applied to orders in the unit of work the consumer gives them. Applying one twice
is harmless: only a PENDING order moves. A result that does not match its order is refused, never applied."""

from __future__ import annotations

from messaging.consumer import Handler, Rejected
from messaging.events import Envelope, PaymentFailed, PaymentSucceeded
from messaging.unit_of_work import UnitOfWork
from orders import service


async def on_payment_results(envelopes: list[Envelope], work: UnitOfWork) -> list[Rejected]:
    """Successes and failures alike, a whole run of them in one statement."""
    refused = await service.apply_payment_results(work, [_outcome(envelope) for envelope in envelopes])
    return [Rejected(envelopes[index], reason) for index, reason in refused.items()]


def _outcome(envelope: Envelope) -> service.PaymentOutcome:
    event = envelope.event
    assert isinstance(event, (PaymentSucceeded, PaymentFailed))
    failure = event.reason if isinstance(event, PaymentFailed) else None
    return service.PaymentOutcome(event.order_id, event.user_id, event.amount, failure)


HANDLERS: dict[str, Handler] = {
    PaymentSucceeded.TYPE: on_payment_results,
    PaymentFailed.TYPE: on_payment_results,
}
