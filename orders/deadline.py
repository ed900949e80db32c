"""The payment deadline: no order stays PENDING for ever. Orders never fails an order on its own word (Payments
owns the money and decides once); it asks Payments to close the overdue ones, and applies the answer like any
other payment result. While Payments is down, the order waits."""

from __future__ import annotations

import asyncio
import logging

from messaging.outbox import DATABASE_ERRORS
from messaging.unit_of_work import Transactions
from orders import metrics, service

log = logging.getLogger("orders.deadline")


class PaymentDeadline:
    def __init__(self, deadline_seconds: float, commands_topic: str, transactions: Transactions) -> None:
        self.deadline_seconds = deadline_seconds
        self._commands_topic = commands_topic
        self._transactions = transactions
        # An overdue order is asked about within a tenth of the deadline (at most 5 s) of falling due.
        self._interval = min(5.0, deadline_seconds / 10)
        self.asked = 0

    async def refresh_metrics(self) -> None:
        metrics.ORDERS_OVERDUE.set(await service.count_overdue(self.deadline_seconds))

    async def run(self) -> None:
        while True:
            try:
                asked = await service.request_expiry_of_overdue(
                    self._transactions, self.deadline_seconds, self._commands_topic
                )
            except DATABASE_ERRORS as exc:
                log.warning("looking for overdue orders failed: %s", exc)
            else:
                self.asked += len(asked)
                if len(asked) == service.EXPIRY_BATCH:
                    continue
            await asyncio.sleep(self._interval)
