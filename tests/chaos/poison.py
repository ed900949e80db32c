"""Bad messages and bad handlers: what the poison fault kinds inject, and what must become of each.

A message the harness produces that no consumer may apply (it does not decode, breaks a value rule, or claims what
the consumer knows to be false) must become exactly one dead letter, in the service that consumes its topic, and
appear on that topic's ``.dlq`` twin; nothing it carries may reach the database. The orders of the two special
users are placed through the gateway like any other: the services are started with handler faults for them
(``GOZON_HANDLER_FAULTS``): a *flaky* user's command and result fail their first attempts and must still settle,
with no dead letter; a *broken* user's command always fails, so it must end as a dead letter, and the payment
deadline must then close the order as FAILED (``PAYMENT_TIMEOUT``) exactly once, with no debit.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from messaging.events import Envelope, FailureReason, PaymentFailed, PaymentRequested, PaymentSucceeded
from messaging.topics import Topics
from tests.chaos import kafka_tools
from tests.chaos.config import ChaosConfig
from tests.chaos.load import Load, OrderRequest

KINDS = (
    "refused-values",
    "unknown-order-result",
    "mismatched-result",
    "missing-fields",
    "flaky-handler",
    "broken-handler",
)
FLAKY_ATTEMPTS = 2
"""A flaky user's events fail this many attempts, then go through (within CONSUMER_MAX_ATTEMPTS)."""


def handler_faults(config: ChaosConfig) -> str:
    """The ``GOZON_HANDLER_FAULTS`` every instance of the run starts with."""
    flaky, broken = special_user_prefixes(config)
    return ",".join(
        [
            f"payment.requested:{flaky}*={FLAKY_ATTEMPTS}",
            f"payment.succeeded:{flaky}*={FLAKY_ATTEMPTS}",
            f"payment.requested:{broken}*=always",
        ]
    )


def special_user_prefixes(config: ChaosConfig) -> tuple[str, str]:
    return f"chaos-{config.seed}-flaky", f"chaos-{config.seed}-broken"


@dataclass(frozen=True)
class Injected:
    """A bad message the harness produced, and the service that must dead-letter it."""

    kind: str
    service: str
    topic: str
    value: bytes
    acknowledged: bool = True
    """False when the broker never acknowledged it (it died meanwhile): it may or may not have been written."""


class Poisoner:
    def __init__(self, config: ChaosConfig, bootstrap_servers: str, topics: Topics, load: Load) -> None:
        self.config = config
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.load = load
        self.injected: list[Injected] = []
        self.flaky_orders: list[OrderRequest] = []
        self.broken_orders: list[OrderRequest] = []
        self._rng = random.Random(f"{config.seed}-poison")

    async def inject(self, kind: str) -> int:
        """One fault of ``kind``: how many bad messages (or special orders) it made."""
        if kind == "flaky-handler":
            return await self._special_orders(self.load.flaky_user, self.flaky_orders)
        if kind == "broken-handler":
            return await self._special_orders(self.load.broken_user, self.broken_orders)
        messages = {
            "refused-values": self._refused_values,
            "unknown-order-result": self._unknown_order_results,
            "mismatched-result": self._mismatched_results,
            "missing-fields": self._missing_fields,
        }[kind]()
        await self._produce(kind, messages)
        return len(messages)

    async def unreadable(self) -> None:
        """At the start: bytes that are not an event, an invalid field, an unknown type, to each topic."""
        header = {"version": 1, "occurred_at": _now(), "user_id": "chaos-poison"}
        for topic, service, event_type in (
            (self.topics.payment_commands, "payments", "payment.requested"),
            (self.topics.payment_results, "orders", "payment.succeeded"),
        ):
            wrong_schema = header | {"message_id": _id(), "type": event_type, "order_id": "not-a-uuid"}
            unknown_type = header | {"message_id": _id(), "type": "payment.refunded", "amount": "1.00"}
            values = [
                b'{"message_id": "' + _id().encode() + b'", "type": ',
                json.dumps(wrong_schema | {"amount": 12.5}).encode(),
                json.dumps(unknown_type).encode(),
                b"[" * 5000 + b"]" * 5000,
            ]
            await self._produce("unreadable", [(topic, service, value) for value in values])

    # The kinds ------------------------------------------------------------------------------------------------

    def _refused_values(self) -> list[tuple[str, str, bytes]]:
        """Well-formed events whose values the database would refuse (the rules refuse them first)."""
        commands, results = self.topics.payment_commands, self.topics.payment_results
        user = self._real_user()
        return [
            (commands, "payments", _event("payment.requested", user=user, amount="99999999999999.999")),
            (commands, "payments", _event("payment.requested", user="u" * 65, amount="1.00")),
            (results, "orders", _event("payment.succeeded", user=user, amount="0.001")),
            (results, "orders", _event("payment.failed", user=user, amount="1.00", reason="BAD_LUCK")),
        ]

    def _unknown_order_results(self) -> list[tuple[str, str, bytes]]:
        user = self._real_user()
        event = PaymentSucceeded(uuid.uuid4(), user, Decimal("1.00"))
        return [(self.topics.payment_results, "orders", Envelope(event).to_json().encode())]

    def _mismatched_results(self) -> list[tuple[str, str, bytes]]:
        """Results for real orders, the latest accepted, with another amount or another user."""
        accepted = [order for order in self.load.orders[-50:] if order.order_id and order.user_id in self._real_ids()]
        messages = []
        for order in self._rng.sample(accepted, min(2, len(accepted))):
            order_id = uuid.UUID(order.order_id or "")
            wrong_amount = PaymentSucceeded(order_id, order.user_id, order.amount + Decimal("0.01"))
            other_user = PaymentFailed(order_id, f"{order.user_id}-not", order.amount, FailureReason.INSUFFICIENT_FUNDS)
            messages += [
                (self.topics.payment_results, "orders", Envelope(wrong_amount).to_json().encode()),
                (self.topics.payment_results, "orders", Envelope(other_user).to_json().encode()),
            ]
        return messages

    def _missing_fields(self) -> list[tuple[str, str, bytes]]:
        """A known event type without the fields it needs."""
        full = json.loads(Envelope(PaymentRequested(uuid.uuid4(), self._real_user(), Decimal("1.00"))).to_json())
        return [
            (self.topics.payment_commands, "payments", json.dumps(_without(full, "amount")).encode()),
            (self.topics.payment_commands, "payments", json.dumps(_without(full, "user_id", "order_id")).encode()),
        ]

    async def _special_orders(self, user: Any, placed: list[OrderRequest]) -> int:
        orders = [await self.load.place(user, self._rng) for _ in range(self.config.special_orders)]
        placed += [order for order in orders if order is not None]
        return len(orders)

    # Producing ------------------------------------------------------------------------------------------------

    async def _produce(self, kind: str, messages: list[tuple[str, str, bytes]]) -> None:
        async with kafka_tools.producer(self.bootstrap_servers) as client:
            for topic, service, value in messages:
                key = self._real_user().encode()
                # Faults inject concurrently: each marks its own entry, by its place in the list.
                place = len(self.injected)
                self.injected.append(Injected(kind, service, topic, value, acknowledged=False))
                await (await client.send(topic, value, key=key))
                self.injected[place] = Injected(kind, service, topic, value)

    def _real_ids(self) -> set[str]:
        return self.load.real_user_ids

    def _real_user(self) -> str:
        return self._rng.choice(sorted(self._real_ids()))


def _event(kind: str, *, user: str, amount: str, reason: str | None = None) -> bytes:
    event: dict[str, Any] = {
        "message_id": _id(),
        "type": kind,
        "version": 1,
        "occurred_at": _now(),
        "order_id": _id(),
        "user_id": user,
        "amount": amount,
    }
    if reason:
        event["reason"] = reason
    return json.dumps(event).encode()


def _without(event: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {name: value for name, value in event.items() if name not in fields} | {"message_id": _id()}


def _id() -> str:
    return str(uuid.uuid4())


def _now() -> str:
    return datetime.now(UTC).isoformat()
