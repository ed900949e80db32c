"""The faults: what each one does to the running system, when it happens (a seeded schedule), and the window
during which it was active.

Faults run concurrently, each at its own moment, but two faults never touch the same thing at once: each takes
the locks of what it disturbs (an instance, the broker, the database) in a fixed order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiokafka.errors import KafkaError

from messaging.events import Envelope, Event, InvalidMessage, PaymentRequested
from messaging.topics import Topics
from tests.chaos import kafka_tools, poison
from tests.chaos.cluster import ChaosCluster, Instance, InstanceFailed
from tests.chaos.config import ChaosConfig

log = logging.getLogger("chaos.faults")

KINDS = (
    "kill-orders",
    "kill-payments",
    "relay-crash-after-ack",
    "consumer-crash-before-offset-commit",
    "pause-payments",
    "kill-broker",
    "stop-postgres",
    "redeliver-from-earliest",
    "republish-under-new-ids",
    "concurrent-pairs",
    *poison.KINDS,
)
FAULT_POINTS = {
    "relay-crash-after-ack": "relay.after_ack",
    "consumer-crash-before-offset-commit": "consumer.before_offset_commit",
}
KILLED = -signal.SIGKILL
FAULT_POINT_WAIT = 45.0
RESTART_DEADLINE = 120.0
PAYMENTS_GROUP = "payments"
GROUP_SETTLE_TIMEOUT = 30.0
BURST_TIMEOUT = 5.0
TAIL_FACTOR = 10


@dataclass(frozen=True)
class PlannedFault:
    at: float
    """Seconds after the warm-up."""
    kind: str
    target: str
    downtime: float
    probability: float
    lead: float
    """Seconds between the burst of work and the kill."""


@dataclass
class FaultWindow:
    kind: str
    target: str
    started: float
    ended: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def covers(self, started: float, ended: float, grace: float) -> bool:
        return started <= (self.ended or time.time()) + grace and ended >= self.started


@dataclass(frozen=True)
class SyntheticOrder:
    """An order only the payments side knows: its command was produced by the harness, not by orders."""

    order_id: uuid.UUID
    user_id: str
    amount: Decimal
    has_account: bool


def plan(config: ChaosConfig) -> list[PlannedFault]:
    """The whole fault schedule, from the seed alone."""
    rng = random.Random(config.seed)
    planned = []
    for kind in KINDS:
        for _ in range(config.faults_per_kind):
            planned.append(
                PlannedFault(
                    at=round(rng.uniform(0, config.fault_period), 2),
                    kind=kind,
                    target=rng.choice(_targets(kind)),
                    downtime=round(rng.uniform(0.5, 3.0), 2),
                    probability=rng.choice((0.3, 0.5, 1.0)),
                    lead=round(rng.uniform(0.05, 0.5), 2),
                )
            )
    return sorted(planned, key=lambda fault: fault.at)


def _targets(kind: str) -> tuple[str, ...]:
    if kind == "kill-orders":
        return ("orders-a", "orders-b")
    if kind in ("kill-payments", "pause-payments"):
        return ("payments-a", "payments-b")
    if kind in FAULT_POINTS:
        return ("orders-a", "orders-b", "payments-a", "payments-b")
    if kind == "kill-broker":
        return ("broker",)
    if kind == "stop-postgres":
        return ("postgres",)
    if kind in ("flaky-handler", "broken-handler"):
        return ("gateway",)
    if kind in poison.KINDS:
        return ("broker",)
    return ("payments",)


def _locks(fault: PlannedFault) -> list[str]:
    if fault.kind == "redeliver-from-earliest":
        # Before the rewind the harness reads the inbox: the database must be up.
        return ["broker", "payments-a", "payments-b", "postgres"]
    if fault.kind == "concurrent-pairs":
        return ["broker", "payments-a", "payments-b"]
    if fault.kind == "republish-under-new-ids":
        return ["broker"]
    return [fault.target]


class FaultInjector:
    def __init__(
        self,
        config: ChaosConfig,
        cluster: ChaosCluster,
        topics: Topics,
        synthetic_users: list[tuple[str, bool]],
        real_users: set[str],
        verify_handled: Callable[[], Awaitable[None]],
        poisoner: poison.Poisoner,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.topics = topics
        self.windows: list[FaultWindow] = []
        self.synthetic_orders: list[SyntheticOrder] = []
        self.synthetic_users = synthetic_users
        self.real_users = real_users
        self._verify_handled = verify_handled
        self.poisoner = poisoner
        self.failed_starts = 0
        self.figures: Counter[str] = Counter()
        self._rng = random.Random(f"{config.seed}-messages")
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(self, planned: list[PlannedFault]) -> None:
        origin = time.monotonic()
        async with asyncio.TaskGroup() as faults:
            for fault in planned:
                faults.create_task(self._at(origin, fault))

    async def _at(self, origin: float, fault: PlannedFault) -> None:
        await asyncio.sleep(max(0.0, origin + fault.at - time.monotonic()))
        async with contextlib.AsyncExitStack() as held:
            for name in sorted(_locks(fault)):
                await held.enter_async_context(self._locks.setdefault(name, asyncio.Lock()))
            async with self._window(fault) as window:
                await self._action(fault.kind)(fault, window)

    @contextlib.asynccontextmanager
    async def _window(self, fault: PlannedFault) -> AsyncIterator[FaultWindow]:
        window = FaultWindow(fault.kind, fault.target, time.time())
        self.windows.append(window)
        log.info("fault %s on %s begins", fault.kind, fault.target)
        try:
            yield window
        finally:
            window.ended = time.time()
            log.info("fault %s on %s ended after %.1fs", fault.kind, fault.target, window.ended - window.started)

    def _action(self, kind: str) -> Callable[[PlannedFault, FaultWindow], Coroutine[Any, Any, None]]:
        return {
            "kill-orders": self._kill,
            "kill-payments": self._kill,
            "relay-crash-after-ack": self._fault_point,
            "consumer-crash-before-offset-commit": self._fault_point,
            "pause-payments": self._pause,
            "kill-broker": self._kill_broker,
            "stop-postgres": self._stop_postgres,
            "redeliver-from-earliest": self._redeliver_from_earliest,
            "republish-under-new-ids": self._republish_under_new_ids,
            "concurrent-pairs": self._concurrent_pairs,
        }.get(kind, self._poison)

    # Processes ------------------------------------------------------------------------------------------------

    async def _kill(self, fault: PlannedFault, window: FaultWindow) -> None:
        """SIGKILL while the service is busy: a burst of duplicate work first, so the process dies mid-batch
        (at a few orders a second a kill at a random moment would almost always find it idle)."""
        instance = self.cluster.instances[fault.target]
        window.detail["burst"] = await self._burst(instance.service)
        await asyncio.sleep(fault.lead)
        await self.cluster.kill(instance)
        await asyncio.sleep(fault.downtime)
        await self._restart(instance)

    async def _burst(self, service: str) -> int:
        """Work for the service's consumers, if the broker is there to carry it (it may be down by another fault)."""
        topic = self.topics.payment_commands if service == "payments" else self.topics.payment_results
        try:
            async with asyncio.timeout(BURST_TIMEOUT):
                return await self._republish(topic, self.config.burst)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("no burst before the kill: %r", exc)
            return 0

    async def _fault_point(self, fault: PlannedFault, window: FaultWindow) -> None:
        """Restart the instance with the fault point armed, wait for it to kill itself there, restart it clean."""
        instance = self.cluster.instances[fault.target]
        point = FAULT_POINTS[fault.kind]
        await self.cluster.stop_gracefully(instance)
        await self.cluster.spawn(instance, fault_points=f"{point}={fault.probability}")
        code = await self.cluster.exit_code(instance, FAULT_POINT_WAIT)
        window.detail["hit"] = code == KILLED
        if code is None:
            log.warning("%s never reached %s within %.0fs", instance.name, point, FAULT_POINT_WAIT)
            await self.cluster.stop_gracefully(instance)
        else:
            self.cluster.forget(instance)
        await self._restart(instance)

    async def _pause(self, fault: PlannedFault, _window: FaultWindow) -> None:
        """SIGSTOP for longer than the consumer's session and poll interval: the group moves its partitions to
        the other instance, and whatever the paused one was doing resumes late against a newer generation."""
        instance = self.cluster.instances[fault.target]
        self.cluster.pause(instance)
        await asyncio.sleep(self.config.pause_seconds)
        self.cluster.resume(instance)

    async def _restart(self, instance: Instance) -> None:
        """Like a supervisor would: start it again until it stays up (it exits if, say, the database is down)."""
        deadline = time.monotonic() + RESTART_DEADLINE
        while True:
            try:
                await self.cluster.spawn(instance)
                return
            except InstanceFailed as exc:
                self.failed_starts += 1
                self.cluster.forget(instance)
                if time.monotonic() > deadline:
                    raise
                log.warning("%s; starting it again", exc)
                await asyncio.sleep(1.0)

    # Infrastructure -------------------------------------------------------------------------------------------

    async def _kill_broker(self, fault: PlannedFault, _window: FaultWindow) -> None:
        await self.cluster.kill_broker()
        await asyncio.sleep(fault.downtime)
        await self.cluster.start_broker()

    async def _stop_postgres(self, fault: PlannedFault, _window: FaultWindow) -> None:
        await self.cluster.stop_postgres()
        await asyncio.sleep(fault.downtime)
        await self.cluster.start_postgres()

    # Duplicate deliveries -------------------------------------------------------------------------------------

    async def _redeliver_from_earliest(self, _fault: PlannedFault, window: FaultWindow) -> None:
        """Every command arrives again: stop the group's members, rewind it to the beginning, start them. Before
        the rewind, check that the group never committed past a command it did not handle: the redelivery would
        hide it."""
        redelivered = await self.rewind_payments(before=self._verify_handled)
        window.detail["redelivered"] = redelivered
        self.figures["redelivered"] += redelivered

    async def rewind_payments(self, before: Callable[[], Awaitable[None]] | None = None) -> int:
        """Rewind the payments group to the beginning of the commands topic; returns how many come again."""
        payments = self.cluster.of("payments")
        await asyncio.gather(*(self.cluster.stop_gracefully(instance) for instance in payments))
        servers, topic = self.cluster.bootstrap_servers, self.topics.payment_commands
        await kafka_tools.wait_group_empty(servers, PAYMENTS_GROUP, topic)
        if before:
            await before()
        redelivered = await kafka_tools.rewind_group(servers, PAYMENTS_GROUP, topic)
        await asyncio.gather(*(self._restart(instance) for instance in payments))
        return redelivered

    async def _republish_under_new_ids(self, _fault: PlannedFault, window: FaultWindow) -> None:
        """Copies of handled commands under new message ids: the inbox cannot recognise them, the ledger must."""
        window.detail["republished"] = await self._republish(self.topics.payment_commands, self.config.republish)

    async def _republish(self, topic: str, count: int) -> int:
        """Up to ``count`` recent events of real users on ``topic``, produced again under new message ids."""
        # Read well beyond ``count``: the tail may be mostly the harness's own messages (concurrent pairs).
        records = await kafka_tools.read_topic(self.cluster.bootstrap_servers, topic, last=count * TAIL_FACTOR)
        # The poison the harness produced names real users too; a copy of it would be a dead letter nobody planned.
        poison = {injected.value for injected in self.poisoner.injected}
        events = [
            event for record in records if record.value not in poison and (event := self._real_event(record.value))
        ]
        chosen = self._rng.sample(events, min(count, len(events)))
        async with kafka_tools.producer(self.cluster.bootstrap_servers) as producer:
            acks = [
                await producer.send(topic, Envelope(event).to_json().encode(), key=event.user_id.encode())
                for event in chosen
            ]
            await asyncio.gather(*acks)
        what = "commands" if topic == self.topics.payment_commands else "results"
        self.figures[f"republished {what}"] += len(chosen)
        return len(chosen)

    def _real_event(self, raw: bytes) -> Event | None:
        try:
            event = Envelope.from_bytes(raw).event
        except InvalidMessage:
            return None
        return event if getattr(event, "user_id", None) in self.real_users else None

    async def _concurrent_pairs(self, _fault: PlannedFault, window: FaultWindow) -> None:
        """New commands, each produced twice with the same message id to two partitions held by different
        payments instances: both instances hold a copy at once and race to apply it."""
        first, second = await self._partitions_of_two_members()
        topic = self.topics.payment_commands
        async with kafka_tools.producer(self.cluster.bootstrap_servers) as producer:
            for _ in range(self.config.pairs):
                user_id, has_account = self._rng.choice(self.synthetic_users)
                amount = (Decimal(self._rng.randint(1, 999)) / 100).quantize(Decimal("0.01"))
                command = PaymentRequested(order_id=uuid.uuid4(), user_id=user_id, amount=amount)
                raw = Envelope(command).to_json().encode()
                acks = [
                    await producer.send(topic, raw, key=user_id.encode(), partition=partition)
                    for partition in (first, second)
                ]
                await asyncio.gather(*acks)
                self.synthetic_orders.append(SyntheticOrder(command.order_id, user_id, amount, has_account))
        window.detail |= {"pairs": self.config.pairs, "partitions": [first, second]}
        self.figures["concurrent pairs"] += self.config.pairs

    async def _partitions_of_two_members(self) -> tuple[int, int]:
        """A partition of each payments instance, once the group settled with both (a restart may be recent)."""
        deadline = time.monotonic() + GROUP_SETTLE_TIMEOUT
        async with kafka_tools.admin(self.cluster.bootstrap_servers) as client:
            while True:
                group = await kafka_tools.describe_group(client, PAYMENTS_GROUP, self.topics.payment_commands)
                held = [partitions for partitions in group.members.values() if partitions]
                if group.state == "Stable" and len(held) == 2:
                    self.figures["pairs split across instances"] += self.config.pairs
                    return self._rng.choice(held[0]), self._rng.choice(held[1])
                if time.monotonic() > deadline:
                    log.warning("payments group is %s with %d members holding partitions", group.state, len(held))
                    return 0, 1
                await asyncio.sleep(0.5)

    # Poison -------------------------------------------------------------------------------------------------

    async def _poison(self, fault: PlannedFault, window: FaultWindow) -> None:
        """Bad messages, or orders whose handling fails on purpose (tests/chaos/poison.py)."""
        window.detail["messages"] = await self.poisoner.inject(fault.kind)
        self.figures[fault.kind] += window.detail["messages"]
