"""Payment commands from Kafka."""

from __future__ import annotations

from messaging.consumer import Handler
from messaging.events import Envelope, PaymentRequested
from payments import service


def handlers(results_topic: str) -> dict[str, Handler]:
    async def on_payment_requested(envelope: Envelope) -> None:
        await service.settle_payment_request(envelope, results_topic)

    return {PaymentRequested.TYPE: on_payment_requested}
