"""Settlement with poison in the pipes: the fixed-rate latency probe again, while one bad message a second goes
to Kafka beside the load, against the same probe without them, in the same round.

The bad messages take turns: a command whose amount breaks the value rules (dead-lettered by Payments' decoder), a
result for an order Orders never had, a result naming another amount for an order of the load (both refused by
Orders' check of the claim), and an order of a user whose command handler always fails (the bench stack arms
``GOZON_HANDLER_FAULTS`` for ``BROKEN_USER_PREFIX``): its command is set aside, tried ``CONSUMER_MAX_ATTEMPTS``
times and dead-lettered, while the partition's later commands go on. Every one must end as one dead letter.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from bench.workload import JSON, ORDER_BODY, Created
from messaging.events import Envelope, PaymentSucceeded

if TYPE_CHECKING:
    from bench.phases import Bench

BROKEN_USER_PREFIX = "bench-broken-"
HANDLER_FAULTS = f"payment.requested:{BROKEN_USER_PREFIX}*=always"
KINDS = ("refused-value-command", "unknown-order-result", "mismatched-result", "broken-handler-order")


class Poison:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._markers: list[str] = []
        """An id each bad message carries (its message id, or the broken order's id): how its dead letter is found."""

    async def measure(self) -> dict[str, Any]:
        since = time.time()
        poisoned, _ = await self.bench.fixed_rate(alongside=self._inject_every_second, label="with poison")
        async with self.bench.progress.phase("waiting for the dead letters"):
            dead_lettered = await self._wait_for_dead_letters(since)
        return {**poisoned, "injected": dict(self.injected), "dead_lettered": dead_lettered}

    async def _inject_every_second(self, created: Created, seconds: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bench.stack.broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            started = time.monotonic()
            for index in range(int(seconds)):
                await asyncio.sleep(max(0.0, started + index + 0.5 - time.monotonic()))
                kind = KINDS[index % len(KINDS)]
                await self._inject(producer, kind, created)
                self.injected[kind] += 1
        finally:
            await producer.stop()

    async def _inject(self, producer: AIOKafkaProducer, kind: str, created: Created) -> None:
        topics = self.bench.stack.topics
        user = self.bench.users[self.injected[kind] % len(self.bench.users)]
        if kind == "broken-handler-order":
            self._markers.append(await self._broken_order())
            return
        message_id = uuid.uuid4()
        if kind == "refused-value-command":
            topic, value = topics.payment_commands, _refused_command(message_id, user)
        else:
            order_id = uuid.uuid4()
            if kind == "mismatched-result":
                user, order_id = created[-1]
            result = PaymentSucceeded(order_id, user, Decimal("999.99"))
            topic, value = topics.payment_results, Envelope(result, message_id=message_id).to_json().encode()
        self._markers.append(str(message_id))
        await producer.send_and_wait(topic, value, key=user.encode())

    async def _broken_order(self) -> str:
        user = f"{BROKEN_USER_PREFIX}{uuid.uuid4().hex[:8]}"
        response = await self.bench.gateway.request("POST", "/orders", {"X-User-Id": user, **JSON}, ORDER_BODY)
        if response.status != 201:
            raise RuntimeError(f"the broken user's order was refused: {response.status} {response.body!r}")
        return json.loads(response.body)["id"]

    async def _wait_for_dead_letters(self, since: float) -> int:
        """The dead letters that carry one of the markers, once there are as many as bad messages (or the drain
        timeout passed)."""
        deadline = time.monotonic() + self.bench.plan.drain_timeout
        while True:
            found = 0
            for pool in (self.bench.observer.orders, self.bench.observer.payments):
                found += await pool.fetchval(
                    "SELECT count(*) FROM dead_letters WHERE first_failed_at >= to_timestamp($1) "
                    "AND EXISTS (SELECT FROM unnest($2::text[]) AS marker "
                    "WHERE position(convert_to(marker, 'UTF8') IN payload) > 0)",
                    since,
                    self._markers,
                )
            if found >= len(self._markers) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)


def _refused_command(message_id: uuid.UUID, user: str) -> bytes:
    """A well-formed ``payment.requested`` whose amount ``numeric(12,2)`` would refuse."""
    return json.dumps(
        {
            "message_id": str(message_id),
            "type": "payment.requested",
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "order_id": str(uuid.uuid4()),
            "user_id": user,
            "amount": "99999999999999.999",
        }
    ).encode()
