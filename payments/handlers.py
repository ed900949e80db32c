"""Payment commands from Kafka, applied in the transaction the consumer gives them, one after the other."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from messaging.consumer import Handler
from messaging.events import Envelope, PaymentRequested
from payments import service


def handlers(results_topic: str) -> dict[str, Handler]:
    async def on_payment_requested(envelopes: list[Envelope], conn: BaseDBAsyncClient) -> None:
        for envelope in envelopes:
            await service.settle_payment_request(conn, envelope, results_topic)

    return {PaymentRequested.TYPE: on_payment_requested}
