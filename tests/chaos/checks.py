"""What must hold once the faults stop and the system drained: nothing lost, nothing stuck, one debit per paid
order, balances right to the cent, per-user order on the topics, every outbox row published, only poison in the
dead-letter topics, no 5xx outside a fault. And after the inbox is purged and every command replayed: no new debit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiokafka.errors import KafkaError

from messaging.dead_letters import Delivery
from messaging.events import Envelope, InvalidMessage
from messaging.topics import Topics, dead_letter_topic
from tests.chaos import kafka_tools
from tests.chaos.cluster import ChaosCluster
from tests.chaos.config import ChaosConfig
from tests.chaos.faults import FaultInjector, FaultWindow
from tests.chaos.findings import Findings
from tests.chaos.load import Load, ServerError, User
from tests.chaos.monitors import Stall
from tests.chaos.poison import Poisoner

log = logging.getLogger("chaos.checks")

MAX_SUBSET_ITEMS = 12
# Generous: a replayed command costs a few milliseconds of one payments instance.
REPLAY_SECONDS_PER_COMMAND = 0.01
READY_TIMEOUT = 30.0
REPLAY_HEADER = "gozon-replays"
STOPPING_FAULTS = ("kill-broker", "stop-postgres", "redeliver-from-earliest")
MEMBER_LOSS_FAULTS = (
    "kill-orders",
    "kill-payments",
    "pause-payments",
    "relay-crash-after-ack",
    "consumer-crash-before-offset-commit",
)
"""Faults that take one consumer out of its group: its partitions wait until the coordinator evicts it (the session
timeout) and the group has rejoined (up to the rebalance timeout), while the other instance may itself be
restarting."""


@dataclass(frozen=True)
class Snapshot:
    """The money and the orders' states, to compare before and after a replay."""

    payments: dict[uuid.UUID, tuple[str, Decimal]]
    balances: dict[str, Decimal]
    orders: dict[uuid.UUID, str]


class Checks:
    def __init__(self, cluster: ChaosCluster, topics: Topics, findings: Findings, awaiting_deadline: str) -> None:
        self.cluster = cluster
        self.topics = topics
        self.findings = findings
        self.awaiting_deadline = awaiting_deadline
        """A user-id prefix whose orders stay PENDING until the payment deadline closes them (poison.py)."""
        self.figures: dict[str, Any] = {}

    async def fetch(self, service: str, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.cluster.database_url(service))
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def execute(self, service: str, statement: str) -> str:
        conn = await asyncpg.connect(self.cluster.database_url(service))
        try:
            return await conn.execute(statement)
        finally:
            await conn.close()

    # Draining -------------------------------------------------------------------------------------------------

    async def drained(self) -> bool:
        """No order pending (but those that wait for their deadline), no outbox row or dead letter unpublished, no
        message under retry, no message a consumer group has not committed."""
        [orders] = await self.fetch(
            "orders",
            "SELECT count(*) AS n FROM orders WHERE status = 'PENDING' AND user_id NOT LIKE $1 || '%'",
            self.awaiting_deadline,
        )
        if orders["n"]:
            return False
        for service in ("orders", "payments"):
            [backlog] = await self.fetch(
                service,
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) "
                "+ (SELECT count(*) FROM dead_letters WHERE published_at IS NULL) "
                "+ (SELECT count(*) FROM message_retries) AS n",
            )
            if backlog["n"]:
                return False
        for group, topic in (("orders", self.topics.payment_results), ("payments", self.topics.payment_commands)):
            if await kafka_tools.group_lag(self.cluster.bootstrap_servers, group, topic):
                return False
        return True

    async def wait_drained(self, timeout: float) -> float | None:
        """Seconds until drained, or None if it did not within ``timeout`` plus the time the commands the harness
        itself redelivered may take (a rewind to the beginning can leave the whole topic to read again)."""
        started = time.monotonic()
        redelivered = await kafka_tools.group_lag(
            self.cluster.bootstrap_servers, "payments", self.topics.payment_commands
        )
        timeout += REPLAY_SECONDS_PER_COMMAND * redelivered
        while not await self._drained_safely():
            if time.monotonic() - started > timeout:
                return None
            await asyncio.sleep(0.5)
        return round(time.monotonic() - started, 2)

    async def wait_all_settled(self, timeout: float) -> None:
        """Once drained, the orders left PENDING are those waiting for their payment deadline: within one deadline
        (and the time to ask Payments), none may be left."""
        started = time.monotonic()
        while True:
            try:
                [pending] = await self.fetch("orders", "SELECT count(*) AS n FROM orders WHERE status = 'PENDING'")
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("pending check failed: %s", exc)
            else:
                if not pending["n"]:
                    self.figures["deadline_wait_seconds"] = round(time.monotonic() - started, 1)
                    return
            if time.monotonic() - started > timeout:
                return  # the orders check names each stuck one
            await asyncio.sleep(0.5)

    async def _drained_safely(self) -> bool:
        try:
            return await self.drained()
        except (OSError, asyncpg.PostgresError, KafkaError) as exc:
            log.warning("drain check failed: %s", exc)
            return False

    async def instances_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Every instance is ready again (database and messaging running): a process that still answers HTTP
        while its relay and consumers died would go unnoticed behind its healthy twin."""
        async with httpx.AsyncClient(timeout=2) as client:
            for instance in self.cluster.instances.values():
                deadline = time.monotonic() + timeout
                while (answer := await _ready(client, instance.url)) != 200:
                    if time.monotonic() > deadline:
                        self.findings.violation("instance not ready", f"{instance.name}: {answer}")
                        break
                    await asyncio.sleep(0.5)

    # Orders and money -----------------------------------------------------------------------------------------

    async def orders_and_ledger(self, load: Load, injector: FaultInjector) -> None:
        orders = await self.fetch(
            "orders", "SELECT id, user_id, amount, status, failure_reason, description FROM orders"
        )
        payments = {
            row["order_id"]: row
            for row in await self.fetch(
                "payments", "SELECT order_id, user_id, amount, status, failure_reason FROM payments"
            )
        }
        self._orders(load, orders)
        paid = self._ledger(orders, payments, injector)
        await self._balances(load, paid)

    def _orders(self, load: Load, orders: list[asyncpg.Record]) -> None:
        by_description: dict[str, asyncpg.Record] = {}
        for row in orders:
            if row["description"] in by_description:
                self.findings.violation("duplicate order", f"two orders for one request: {row['description']}")
            by_description[row["description"]] = row
        without_account = {user.id for user in load.users if not user.has_account}
        answered = unanswered = 0
        for request in load.orders:
            row = by_description.pop(request.description, None)
            if request.order_id is not None:
                answered += 1
                if row is None:
                    self.findings.violation("lost order", f"{request.order_id} accepted with 201, not in the database")
                    continue
                if str(row["id"]) != request.order_id or row["amount"] != request.amount:
                    self.findings.violation("wrong order", f"{request} stored as {dict(row)}")
            elif row is not None:
                unanswered += 1
            if row is None:
                continue
            if row["status"] == "PENDING":
                self.findings.violation("stuck order", f"{row['id']} of {row['user_id']} still PENDING")
            not_found = row["failure_reason"] == "ACCOUNT_NOT_FOUND"
            # Any order may time out (if its payment waited past the deadline, during a fault); else the reason says
            # whether the user had an account.
            timed_out = row["failure_reason"] == "PAYMENT_TIMEOUT"
            if not timed_out and not_found != (row["user_id"] in without_account) and row["status"] != "PENDING":
                self.findings.violation("wrong outcome", f"{row['id']} of {row['user_id']}: {row['status']}")
        for row in by_description.values():
            self.findings.violation("unrequested order", f"{row['id']} ({row['description']})")
        statuses = Counter(row["status"] for row in orders)
        self.figures["orders"] = {
            "placed": len(load.orders),
            "accepted_201": answered,
            "created_without_answer": unanswered,
            "paid": statuses["PAID"],
            "failed": statuses["FAILED"],
            "pending": statuses["PENDING"],
            "timed_out": sum(1 for row in orders if row["failure_reason"] == "PAYMENT_TIMEOUT"),
            "idempotent_replays": load.replays,
        }

    def _ledger(
        self, orders: list[asyncpg.Record], payments: dict[uuid.UUID, asyncpg.Record], injector: FaultInjector
    ) -> dict[str, Decimal]:
        """Exactly one debit per paid order, none for a failed one; returns what each user paid in total."""
        paid: dict[str, Decimal] = defaultdict(Decimal)
        for order in orders:
            if order["status"] == "PENDING":
                payments.pop(order["id"], None)
                continue
            payment = payments.pop(order["id"], None)
            expected = ("SUCCEEDED", None) if order["status"] == "PAID" else ("FAILED", order["failure_reason"])
            if payment is None or (payment["status"], payment["failure_reason"]) != expected:
                self.findings.violation("ledger mismatch", f"order {dict(order)} has payment {_row(payment)}")
            elif (payment["amount"], payment["user_id"]) != (order["amount"], order["user_id"]):
                self.findings.violation("ledger mismatch", f"order {dict(order)} has payment {dict(payment)}")
            if order["status"] == "PAID":
                paid[order["user_id"]] += order["amount"]
        for synthetic in injector.synthetic_orders:
            payment = payments.pop(synthetic.order_id, None)
            expected = ("SUCCEEDED", None) if synthetic.has_account else ("FAILED", "ACCOUNT_NOT_FOUND")
            if payment is None or (payment["status"], payment["failure_reason"], payment["amount"]) != (
                *expected,
                synthetic.amount,
            ):
                self.findings.violation("ledger mismatch", f"concurrent pair {synthetic} has payment {_row(payment)}")
            if synthetic.has_account:
                paid[synthetic.user_id] += synthetic.amount
        for payment in payments.values():
            self.findings.violation("payment without order", str(dict(payment)))
        return paid

    async def _balances(self, load: Load, paid: dict[str, Decimal]) -> None:
        balances = {row["user_id"]: row["balance"] for row in await self.fetch("payments", "SELECT * FROM accounts")}
        deposited = {
            row["user_id"]: row["total"]
            for row in await self.fetch(
                "payments", "SELECT user_id, sum(amount) AS total FROM deposits GROUP BY user_id"
            )
        }
        for user in [*load.users, *load.synthetic_users]:
            if not user.has_account:
                if user.id in balances:
                    self.findings.violation("unexpected account", user.id)
                continue
            self._deposits(user, deposited.get(user.id, Decimal(0)))
            balance = balances.get(user.id)
            expected = deposited.get(user.id, Decimal(0)) - paid.get(user.id, Decimal(0))
            if user.opened and balance != expected:
                self.findings.violation("wrong balance", f"{user.id}: {balance}, expected {expected}")
        self.figures["deposits"] = {
            "acknowledged": sum(len(user.deposits) for user in load.users),
            "unresolved": sum(len(user.unresolved_deposits) for user in load.users),
        }

    def _deposits(self, user: User, stored: Decimal) -> None:
        """The deposits table holds every acknowledged deposit once, plus any of those whose answer was lost."""
        extra = stored - sum(user.deposits, Decimal(0))
        if extra not in _subset_sums(user.unresolved_deposits):
            self.findings.violation(
                "wrong deposits",
                f"{user.id}: {stored} stored, {user.deposits} acknowledged, {user.unresolved_deposits} unknown",
            )

    async def commands_handled(self) -> None:
        """Every command below the payments group's committed offsets was handled (its message id is in the
        inbox): an offset is never committed past a message that was not applied."""
        topic = self.topics.payment_commands
        async with kafka_tools.admin(self.cluster.bootstrap_servers) as client:
            committed = await kafka_tools.committed_offsets(client, "payments", topic)
        records = await kafka_tools.read_topic(self.cluster.bootstrap_servers, topic)
        # A message dead-lettered or under retry was given up on, or will be tried again, on purpose.
        set_aside = {
            (row["source_partition"], row["source_offset"])
            for table in ("dead_letters", "message_retries")
            for row in await self.fetch(
                "payments", f"SELECT source_partition, source_offset FROM {table} WHERE source_topic = $1", topic
            )
        }
        delivered = {
            message_id: record
            for record in records
            if record.offset < committed.get(record.partition, 0)
            and (record.partition, record.offset) not in set_aside
            and (message_id := _valid_message_id(record.value))
        }
        handled = await self.fetch(
            "payments", "SELECT message_id FROM inbox WHERE message_id = ANY($1::uuid[])", list(delivered)
        )
        for message_id in delivered.keys() - {row["message_id"] for row in handled}:
            record = delivered[message_id]
            self.findings.violation(
                "skipped message", f"{topic}/{record.partition}/{record.offset} ({message_id}) committed, never handled"
            )

    # Topics ---------------------------------------------------------------------------------------------------

    async def check_topics(self, load: Load, injector: FaultInjector) -> None:
        real_users = load.real_user_ids
        figures: dict[str, Any] = {}
        for service, topic in (("orders", self.topics.payment_commands), ("payments", self.topics.payment_results)):
            outbox = await self.fetch(service, "SELECT id, message_id, key, published_at FROM outbox ORDER BY id")
            records = await kafka_tools.read_topic(self.cluster.bootstrap_servers, topic)
            figures[topic] = self._topic(service, topic, outbox, records, real_users)
        self.figures["topics"] = figures

    # Dead letters ---------------------------------------------------------------------------------------------

    async def dead_letters(self, poisoner: Poisoner, synthetic_orders: set[uuid.UUID], max_attempts: int) -> None:
        """Every bad message the harness produced is exactly one dead letter, of the service that consumes its
        topic (one whose send the broker never acknowledged, because it died meanwhile, is one or none); every
        command of the broken user is one too (or two, when a relay crash published it twice), after all its
        attempts; the results of the concurrent pairs' orders, which Orders never had, are refused by Orders;
        nothing else is a dead letter. And every letter is on its topic's .dlq twin, byte for byte."""
        letters = {
            service: await self.fetch(
                service,
                "SELECT id, source_topic, payload, type, order_id, message_id, attempts, reason FROM dead_letters",
            )
            for service in ("orders", "payments")
        }
        by_value: dict[tuple[str, bytes], list[asyncpg.Record]] = defaultdict(list)
        for service, rows in letters.items():
            for row in rows:
                by_value[(service, bytes(row["payload"] or b""))].append(row)
        explained: set[tuple[str, int]] = set()
        for injected in poisoner.injected:
            found = by_value.get((injected.service, injected.value), [])
            if len(found) != 1 and (injected.acknowledged or found):
                self.findings.violation(
                    "poison not dead-lettered once",
                    f"{injected.kind} on {injected.topic}: {len(found)} letters in {injected.service} for "
                    f"{injected.value[:200]!r}",
                )
            explained |= {(injected.service, row["id"]) for row in found}
        broken = {uuid.UUID(order.order_id) for order in poisoner.broken_orders if order.order_id}
        explained |= self._expected_letters(letters["payments"], "payments", broken, "payment.requested", max_attempts)
        explained |= self._expected_letters(letters["orders"], "orders", synthetic_orders, None, None)
        for service, rows in letters.items():
            for row in rows:
                if (service, row["id"]) not in explained:
                    self.findings.violation(
                        "unexpected dead letter",
                        f"{service} letter {row['id']}: {row['reason']} {row['payload'][:200]!r}",
                    )
        await self._dead_letter_topics(letters)
        self.figures["dead_letters"] = {service: len(rows) for service, rows in letters.items()}

    def _expected_letters(
        self,
        rows: list[asyncpg.Record],
        service: str,
        orders: set[uuid.UUID],
        kind: str | None,
        attempts: int | None,
    ) -> set[tuple[str, int]]:
        """The letters of ``orders`` (each has at least one, all of one message id), after ``attempts`` attempts."""
        of_order: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
        for row in rows:
            if row["order_id"] in orders and (kind is None or row["type"] == kind):
                of_order[row["order_id"]].append(row)
        for order_id in orders:
            found = of_order.get(order_id, [])
            if not found or len({row["message_id"] for row in found}) != 1:
                self.findings.violation("expected dead letter", f"{service}: order {order_id} has {len(found)} letters")
            for row in found:
                if attempts is not None and row["attempts"] != attempts:
                    self.findings.violation("wrong attempts", f"{service} letter {row['id']}: {row['attempts']}")
        return {(service, row["id"]) for found in of_order.values() for row in found}

    async def _dead_letter_topics(self, letters: dict[str, list[asyncpg.Record]]) -> None:
        """Each letter is on ``<topic>.dlq`` (a relay crash may copy it twice, under the same ``dlq.letter``) with
        the original bytes; nothing else is there."""
        stored = {(service, str(row["id"])): row for service, rows in letters.items() for row in rows}
        copied: set[tuple[str, str]] = set()
        for topic in (self.topics.payment_commands, self.topics.payment_results):
            for record in await kafka_tools.read_topic(self.cluster.bootstrap_servers, dead_letter_topic(topic)):
                headers = {name: value.decode(errors="replace") for name, value in record.headers}
                letter = (headers.get("dlq.service", "?"), headers.get("dlq.letter", "?"))
                row = stored.get(letter)
                if row is None or bytes(row["payload"] or b"") != record.value or row["source_topic"] != topic:
                    self.findings.violation("unexpected dead letter", f"{dead_letter_topic(topic)}: {letter}")
                copied.add(letter)
        for letter in stored.keys() - copied:
            self.findings.violation("dead letter not on its topic", f"{letter}")

    async def special_orders(self, poisoner: Poisoner, windows: list[FaultWindow], deadline: float) -> None:
        """The flaky user's orders were paid despite their handlers' first failures; the broken user's were closed
        by the deadline, FAILED with PAYMENT_TIMEOUT (the ledger and balance checks say: once, with no debit).

        A flaky order placed while the broker or a database was down, or the payments group stopped, may reach
        Payments only after its deadline: then Payments rightly closes it as PAYMENT_TIMEOUT, and either outcome
        is right. Without such an outage it must be paid."""
        timeout = ("FAILED", "PAYMENT_TIMEOUT")
        flaky_windows = [window for window in windows if window.kind == "flaky-handler"]
        stopping = [window for window in windows if window.kind in STOPPING_FAULTS]
        outage = any(
            stop.covers(flaky.started, (flaky.ended or flaky.started) + deadline, grace=0)
            for flaky in flaky_windows
            for stop in stopping
        )
        paid = {("PAID", None), timeout} if outage else {("PAID", None)}
        expected = [(order, paid) for order in poisoner.flaky_orders]
        expected += [(order, {timeout}) for order in poisoner.broken_orders]
        ids = [uuid.UUID(order.order_id) for order, _ in expected if order.order_id]
        rows = {
            row["id"]: row
            for row in await self.fetch(
                "orders", "SELECT id, status, failure_reason FROM orders WHERE id = ANY($1::uuid[])", ids
            )
        }
        for order, allowed in expected:
            row = rows.get(uuid.UUID(order.order_id or ""))
            if row is None or (row["status"], row["failure_reason"]) not in allowed:
                self.findings.violation("wrong special outcome", f"{order.user_id} {order.order_id}: {_row(row)}")
        flaky = [rows.get(uuid.UUID(order.order_id or "")) for order in poisoner.flaky_orders]
        self.figures["special_orders"] = {
            "flaky_paid": sum(1 for row in flaky if row and row["status"] == "PAID"),
            "flaky_timed_out_after_an_outage": sum(1 for row in flaky if row and row["status"] == "FAILED"),
            "broken_timed_out": len(poisoner.broken_orders),
        }

    def _topic(
        self,
        service: str,
        topic: str,
        outbox: list[asyncpg.Record],
        records: list[kafka_tools.Record],
        real_users: set[str],
    ) -> dict[str, int]:
        ids = [_valid_message_id(record.value) for record in records]
        outbox_id = {row["message_id"]: row["id"] for row in outbox}
        seen = Counter(message_id for message_id in ids if message_id in outbox_id)
        for row in outbox:
            if row["published_at"] is None:
                self.findings.violation("unpublished outbox row", f"{service} outbox {row['id']}")
            elif row["message_id"] not in seen:
                self.findings.violation("published row not on topic", f"{service} outbox {row['id']} -> {topic}")
        inversions = self._inversions(topic, records, ids, outbox_id, real_users)
        return {
            "messages": len(records),
            "outbox_rows": len(outbox),
            "published_more_than_once": sum(1 for n in seen.values() if n > 1),
            "inversions": inversions,
        }

    def _inversions(
        self,
        topic: str,
        records: list[kafka_tools.Record],
        ids: list[uuid.UUID | None],
        outbox_id: dict[uuid.UUID, int],
        real_users: set[str],
    ) -> int:
        """Per user, outbox rows must first appear on the topic in the order of their ids (a user's rows are
        committed one after another). A repeat of a row already seen is a duplicate, not an inversion."""
        first_seen: set[uuid.UUID] = set()
        highest: dict[str, tuple[int, int]] = {}
        inversions = 0
        for record, message_id in zip(records, ids, strict=True):
            if message_id not in outbox_id or message_id in first_seen or record.key not in real_users:
                continue
            first_seen.add(message_id)
            row_id = outbox_id[message_id]
            previous = highest.get(record.key)
            if previous and previous[0] > row_id:
                inversions += 1
                self.findings.violation(
                    "inversion",
                    f"{topic} key {record.key}: outbox row {row_id} at {record.partition}/{record.offset} after row "
                    f"{previous[0]} at offset {previous[1]}",
                )
            else:
                highest[record.key] = (row_id, record.offset)
        return inversions

    # Errors ---------------------------------------------------------------------------------------------------

    def server_errors(self, errors: list[ServerError], windows: list[FaultWindow], grace: float) -> None:
        during = 0
        for error in errors:
            if any(window.covers(error.started, error.ended, grace) for window in windows):
                during += 1
            else:
                self.findings.violation(
                    "5xx outside a fault", f"{error.method} {error.path} -> {error.status} at {error.started:.3f}"
                )
        self.figures["server_errors"] = {"during_faults": during, "outside_faults": len(errors) - during}

    def stalls(self, stalls: list[Stall], windows: list[FaultWindow], config: ChaosConfig) -> None:
        """Orders kept settling: a stall is only allowed while the broker or the database was down, or the payments
        group was stopped for a rewind (a bad message, whatever it is, may not hold the others up). While a fault
        took a consumer out of its group, a stall may last until the group has evicted it and rejoined."""
        stopping = [window for window in windows if window.kind in STOPPING_FAULTS]
        member_loss = [window for window in windows if window.kind in MEMBER_LOSS_FAULTS]
        for stall in stalls:
            if any(window.covers(stall.started, stall.ended, config.grace) for window in stopping):
                continue
            if stall.longest <= config.member_loss_stall and any(
                window.covers(stall.started, stall.ended, config.grace) for window in member_loss
            ):
                continue
            self.findings.violation(
                "settlement stalled",
                f"no order settled for {stall.longest:.1f}s from {stall.started:.3f} to {stall.ended:.3f}",
            )

    # Replay ---------------------------------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        payments = await self.fetch("payments", "SELECT order_id, status, amount FROM payments")
        balances = await self.fetch("payments", "SELECT user_id, balance FROM accounts")
        orders = await self.fetch("orders", "SELECT id, status FROM orders")
        return Snapshot(
            payments={row["order_id"]: (row["status"], row["amount"]) for row in payments},
            balances={row["user_id"]: row["balance"] for row in balances},
            orders={row["id"]: row["status"] for row in orders},
        )

    async def replay_dead_letters(self, drain_timeout: float) -> None:
        """As an operator would once the cause is fixed: every dead letter's original key, headers and bytes sent
        again to its source topic. The inbox, the ledger and the checks make it change nothing: not a cent moves
        (an invalid or refused message is dead-lettered again; the broken user's commands find their orders
        decided)."""
        before = await self.snapshot()
        letters = [
            (row["source_topic"], row["key"], row["payload"], Delivery.headers_from(row["headers"]))
            for service in ("orders", "payments")
            for row in await self.fetch(service, "SELECT source_topic, key, payload, headers FROM dead_letters")
        ]
        async with kafka_tools.producer(self.cluster.bootstrap_servers) as client:
            acks = [
                await client.send(topic, value, key=key, headers=[*headers, (REPLAY_HEADER, b"1")])
                for topic, key, value, headers in letters
            ]
            await asyncio.gather(*acks)
        drain = await self.wait_drained(drain_timeout)
        if drain is None:
            self.findings.violation("replay not drained", f"{len(letters)} dead letters replayed, not all consumed")
        new_debits = self._compare("dead letters", before, await self.snapshot())
        self.figures["dead_letter_replay"] = {"replayed": len(letters), "new_debits": new_debits}

    async def purge_inbox_and_replay(self, injector: FaultInjector, drain_timeout: float) -> None:
        """As retention would: forget every handled message id, then deliver every command again."""
        before = await self.snapshot()
        purged = int((await self.execute("payments", "DELETE FROM inbox")).split()[-1])
        replayed = await injector.rewind_payments()
        drain = await self.wait_drained(drain_timeout)
        if drain is None:
            self.findings.violation("replay not drained", f"{replayed} commands replayed, not all consumed")
        new_debits = self._compare("commands", before, await self.snapshot())
        self.figures["replay"] = {
            "inbox_rows_purged": purged,
            "commands_replayed": replayed,
            "new_debits": new_debits,
            "drain_seconds": drain,
        }

    def _compare(self, replayed: str, before: Snapshot, after: Snapshot) -> int:
        """New debits between the two snapshots (a violation if any), and any other change."""
        newly_paid = [
            order_id
            for order_id, (status, _) in after.payments.items()
            if status == "SUCCEEDED" and before.payments.get(order_id, ("", 0))[0] != "SUCCEEDED"
        ]
        debited = {
            user: before.balances[user] - balance
            for user, balance in after.balances.items()
            if balance < before.balances.get(user, balance)
        }
        new_debits = len(newly_paid) + len(debited)
        if new_debits:
            self.findings.violation(
                "debit on replay",
                f"replaying {replayed}: {len(newly_paid)} orders newly paid; "
                f"{sum(debited.values())} taken from {len(debited)} accounts",
            )
        for name in ("payments", "balances", "orders"):
            if getattr(before, name) != getattr(after, name):
                changed = _changed(getattr(before, name), getattr(after, name))
                self.findings.violation("changed by replay", f"replaying {replayed}: {name}: {changed[:5]}")
        return new_debits


async def _ready(client: httpx.AsyncClient, url: str) -> int | str:
    try:
        response = await client.get(f"{url}/ready")
    except httpx.HTTPError as exc:
        return repr(exc)
    return response.status_code if response.status_code == 200 else f"{response.status_code} {response.text}"


def _valid_message_id(value: bytes) -> uuid.UUID | None:
    """The message id of an event a consumer can handle; None for one that goes to the dead-letter topic."""
    try:
        return Envelope.from_bytes(value).message_id
    except InvalidMessage:
        return None


def _row(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


def _subset_sums(amounts: list[Decimal]) -> set[Decimal]:
    amounts = amounts[:MAX_SUBSET_ITEMS]
    return {
        sum(combination, Decimal(0))
        for size in range(len(amounts) + 1)
        for combination in itertools.combinations(amounts, size)
    }


def _changed(before: dict[Any, Any], after: dict[Any, Any]) -> list[tuple[Any, Any, Any]]:
    keys: Iterable[Any] = before.keys() | after.keys()
    return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]
