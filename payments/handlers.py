"""Payment commands from Kafka, applied in the unit of work the consumer gives them, one after the other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from messaging.consumer import Handler, Rejected
from messaging.events import Envelope, PaymentExpireRequested, PaymentRequested
from messaging.unit_of_work import UnitOfWork
from payments import service

Settle = Callable[[UnitOfWork, Envelope, str], Awaitable[str | None]]


def handlers(results_topic: str) -> dict[str, Handler]:
    def each(settle: Settle) -> Handler:
        async def handle(envelopes: list[Envelope], work: UnitOfWork) -> list[Rejected]:
            rejected = []
            for envelope in envelopes:
                if (reason := await settle(work, envelope, results_topic)) is not None:
                    rejected.append(Rejected(envelope, reason))
            return rejected

        return handle

    return {
        PaymentRequested.TYPE: each(service.settle_payment_request),
        PaymentExpireRequested.TYPE: each(service.settle_expiry_request),
    }
