"""The PostgreSQL ceiling for Gozon's own statements: what one order costs the database, run by pgbench with no
service in the way, so "even with no application cost, Gozon's statements run at X orders/s on this machine".

Two pgbench processes at once, one per database as the two services would be, each with ``plan.clients``
connections, for ``plan.pgbench_seconds``. One pgbench transaction is one order's share of that database's work:

- orders: ``POST /orders`` (one statement, in a transaction of its own, inserting the order and its outbox row;
  then the relay's wake-up for the other instances, a NOTIFY outside the transaction), then the settle statement
  with its ``pg_notify`` in a transaction of its own (``apply_payment_results`` for one order; the consumer settles
  a polled batch in one such statement and commit);
- payments: the command's transaction (BEGIN; one statement doing the inbox INSERT, ledger claim INSERT, debit
  UPDATE and outbox INSERT; COMMIT), as ``settle_payment_request`` runs it for a funded account, then its wake-up
  NOTIFY;
- both: every ``orders_per_relay``-th order of a client also runs the outbox relay's transaction (one statement
  doing ``SET LOCAL synchronous_commit = off``, the lane locks and ``SELECT ... FOR UPDATE SKIP LOCKED``, then the
  ``published_at`` mark), so
  one relay transaction marks about that many rows: the relay's per-batch cost shared as a relay woken once per
  that many rows shares it (1, the default, is a transaction per row).

Same statements, parameters and prepared-statement protocol as the services, with the differences pgbench forces:
user ids are the numbers 1..``users`` (pgbench has no string expressions), ids are ``gen_random_uuid()`` in the
statement rather than parameters, the order's statement returns its id (for the settle), and the relay's row ids
come back as one array.

Every transaction that NOTIFYs takes one cluster-wide lock just before its commit and keeps it until the commit's
WAL flush is done, so those commits cannot share an fsync as pgbench -N's do. Here only the settle writes and
NOTIFYs in one transaction (one an order; the wake-ups write nothing, so they hold the lock for no flush). How much
of the time pgbench's backends wait on it (``Lock:object``) is sampled while it runs. That lock is why the writers
wake the relay after their commit rather than from inside their transaction.

The scripts run in two databases of their own (``pgbench_ceiling_*``), created in the bench's cluster by the
services' own migrations (the same tables and indexes) and dropped afterwards. Not in the
services' databases: the services LISTEN there, and every NOTIFY would wake their relays and Orders' live hub,
which would then spend the same two cores on transactions of their own. Instead this process LISTENs on the same
channels, one connection per database as each service has, so PostgreSQL delivers every notification as it
would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import procs
from bench.pgbench import children_cpu_seconds, cluster_cpu_seconds, tps_of, transactions_of
from bench.workload import per_unit_ms
from messaging.events import Envelope, PaymentRequested, PaymentSucceeded
from messaging.outbox import LANES, NOTIFY_CHANNEL
from orders.service import STATUS_CHANNEL
from stack import migrate

if TYPE_CHECKING:
    from bench.phases import Bench

# The services' default RELAY_BATCH; with a relay transaction every few orders the limit is never reached.
RELAY_BATCH = 200
# As OutboxRelay computes it for its table; advisory locks are per database, so nothing else takes these.
LOCK_SPACE = zlib.crc32(b"outbox") & 0x7FFFFFFF
AMOUNT = Decimal("1.00")
BALANCE = Decimal("1000000000.00")
LISTENS = {"orders": (NOTIFY_CHANNEL, STATUS_CHANNEL), "payments": (NOTIFY_CHANNEL,)}
# As long as the bench's own user ids, so the payloads are as long as the services'.
PAYLOAD_USER = "bench-0123456789"
# What pgbench's backends are waiting for, sampled while it runs: "Lock:object" is the lock every transaction that
# NOTIFYs holds from just before its commit until after it (the commit's WAL flush included), one at a time.
WAITS = (
    "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS wait, count(*) AS backends "
    "FROM pg_stat_activity WHERE datname = ANY($1) AND application_name = 'pgbench' GROUP BY 1"
)
WAIT_SAMPLE_SECONDS = 0.5

RELAY = """
\\set order_number :order_number + 1
\\if (:order_number + :client_id) % :orders_per_relay = 0
BEGIN;
WITH relay AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true),
    ARRAY(SELECT lane FROM generate_series(0, :lanes - 1) AS lane
    WHERE pg_try_advisory_xact_lock(:lock_space, lane)) AS lanes)
SELECT coalesce(array_agg(id), '{}') AS batch_ids FROM (
    SELECT id, topic, key, payload, created_at FROM outbox, relay
    WHERE published_at IS NULL AND lane = ANY(relay.lanes) ORDER BY id LIMIT :relay_batch
    FOR UPDATE OF outbox SKIP LOCKED
) AS batch \\gset
UPDATE outbox SET published_at = clock_timestamp(), published_partition = 0, published_offset = acked.id
    FROM unnest(:batch_ids::bigint[]) AS acked (id) WHERE outbox.id = acked.id;
COMMIT;
\\endif
"""
SCRIPTS = {
    "orders": """
\\set user random(1, :users)
\\set lane :user % :lanes
WITH new_order AS (INSERT INTO orders (id, user_id, amount, description, status, created_at, updated_at)
    VALUES (gen_random_uuid(), :user, :amount, 'bench', 'PENDING', now(), now()) RETURNING id),
command AS (INSERT INTO outbox (message_id, topic, key, lane, payload, created_at)
    VALUES (gen_random_uuid(), :topic, :user, :lane, :payload, now()))
SELECT id AS order_id FROM new_order \\gset
SELECT pg_notify(:outbox_channel, 'bench');
BEGIN;
WITH checked AS (SELECT id FROM orders WHERE id = :order_id AND user_id = :user AND amount = :amount),
settled AS (UPDATE orders SET status = 'PAID', failure_reason = NULL, updated_at = now()
    FROM checked WHERE orders.id = checked.id AND orders.status = 'PENDING' RETURNING orders.id, orders.user_id)
SELECT pg_notify(:status_channel, json_build_object('order_id', id, 'user_id', user_id)::text) FROM settled;
COMMIT;
"""
    + RELAY,
    "payments": """
\\set user random(1, :users)
\\set lane :user % :lanes
BEGIN;
WITH first_delivery AS (INSERT INTO inbox (message_id, received_at) VALUES (gen_random_uuid(), now())
    ON CONFLICT (message_id) DO NOTHING RETURNING message_id),
claimed AS (INSERT INTO payments (order_id, user_id, amount, status, message_id, created_at)
    SELECT gen_random_uuid(), :user, :amount, 'SUCCEEDED', message_id, now() FROM first_delivery
    ON CONFLICT (order_id) DO NOTHING RETURNING order_id),
debited AS (UPDATE accounts SET balance = balance - :amount, updated_at = now()
    WHERE user_id = :user AND balance >= :amount AND EXISTS (SELECT FROM claimed) RETURNING user_id),
announced AS (INSERT INTO outbox (message_id, topic, key, lane, payload, created_at)
    SELECT gen_random_uuid(), :topic, :user, :lane, :payload, now() WHERE EXISTS (SELECT FROM debited))
SELECT EXISTS (SELECT FROM first_delivery) AS first_delivery, EXISTS (SELECT FROM claimed) AS claimed,
    EXISTS (SELECT FROM debited) AS debited;
COMMIT;
SELECT pg_notify(:outbox_channel, 'bench');
"""
    + RELAY,
}
ROWS = {
    "orders": "SELECT count(*) AS orders, count(*) FILTER (WHERE status = 'PENDING') AS pending, "
    "(SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished FROM orders",
    "payments": "SELECT count(*) AS payments, (SELECT count(*) FROM inbox) AS inbox, "
    "(SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished FROM payments",
}


@dataclass
class Listener:
    """One LISTEN connection, as each service keeps one; counts what it hears."""

    connection: asyncpg.Connection
    heard: int = 0

    @classmethod
    async def open(cls, dsn: str, channels: tuple[str, ...]) -> Listener:
        listener = cls(await asyncpg.connect(dsn))
        for channel in channels:
            await listener.connection.add_listener(channel, listener.on_notification)
        return listener

    def on_notification(self, *_args: object) -> None:
        self.heard += 1


def _with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


class Ceiling:
    """One run of the ceiling; ``measure()`` returns its figures."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        self.cluster = bench.stack.postgres
        self.databases = {service: f"pgbench_ceiling_{service}" for service in SCRIPTS}
        self.dsns = {service: _with_database(self.cluster.admin_dsn, db) for service, db in self.databases.items()}
        topics = bench.stack.topics
        requested = PaymentRequested(order_id=uuid.uuid4(), user_id=PAYLOAD_USER, amount=AMOUNT)
        succeeded = PaymentSucceeded(order_id=uuid.uuid4(), user_id=PAYLOAD_USER, amount=AMOUNT)
        self.variables = {
            "orders": {
                "topic": topics.payment_commands,
                "payload": Envelope(requested).to_json(),
                "status_channel": STATUS_CHANNEL,
            },
            "payments": {"topic": topics.payment_results, "payload": Envelope(succeeded).to_json()},
        }
        self.shared = {
            "users": str(self.plan.users),
            "amount": str(AMOUNT),
            "outbox_channel": NOTIFY_CHANNEL,
            "lanes": str(LANES),
            "lock_space": str(LOCK_SPACE),
            "relay_batch": str(RELAY_BATCH),
            "orders_per_relay": str(self.plan.ceiling_orders_per_relay),
            "order_number": "0",
        }

    async def measure(self) -> dict[str, Any]:
        async with self.bench.progress.phase("ceiling: databases"):
            await self._create()
        try:
            listeners = {service: await Listener.open(self.dsns[service], LISTENS[service]) for service in SCRIPTS}
            try:
                result = await self._run()
            finally:
                for listener in listeners.values():
                    await listener.connection.close()
            result["notifications_heard"] = {service: listener.heard for service, listener in listeners.items()}
            result["rows"] = await self._rows()
        finally:
            await self._drop()
        return result

    async def _run(self) -> dict[str, Any]:
        clients, seconds = self.plan.clients, self.plan.pgbench_seconds
        postmaster = procs.postmaster_pid(self.cluster.data_dir)
        groups_before = self.bench.groups.cpu_snapshot()
        postgres_before, pgbench_before = cluster_cpu_seconds(postmaster), children_cpu_seconds()
        async with self.bench.progress.phase(f"ceiling: 2 x pgbench -c {clients}", seconds):
            outputs, waits = await self._pgbench_with_wait_samples()
        groups_after = self.bench.groups.cpu_snapshot()
        cpu, wall = procs.cpu_share(groups_before, groups_after), groups_after.wall - groups_before.wall
        # The generator here is the two pgbench processes, and PostgreSQL's share counts the backends the postmaster
        # reaped (pgbench's, when it ended); this process only listened and sampled.
        cpu["listeners"] = cpu["generator"]
        cpu["generator"] = round((children_cpu_seconds() - pgbench_before) / wall, 3)
        cpu["postgres"] = round((cluster_cpu_seconds(postmaster) - postgres_before) / wall, 3)
        per_database = {
            service: {"orders_per_s": tps_of(output), "transactions": transactions_of(output)}
            for service, output in zip(SCRIPTS, outputs, strict=True)
        }
        rates = {service: figures["orders_per_s"] for service, figures in per_database.items()}
        return {
            "clients_per_database": clients,
            "seconds": seconds,
            "users": self.plan.users,
            "orders_per_relay": self.plan.ceiling_orders_per_relay,
            "databases": per_database,
            "orders_per_s": min(rates.values()),
            # The settles: the only commits that both write and NOTIFY.
            "notifying_commits_per_s": rates["orders"],
            "backend_waits": waits,
            "cpu": cpu,
            # Each script run is half of an order's database work: the mean of the two rates is whole orders.
            "cpu_ms_per_order": per_unit_ms(cpu, statistics.mean(rates.values())),
        }

    async def _pgbench_with_wait_samples(self) -> tuple[list[str], dict[str, float]]:
        """Both scripts at once (their outputs), and the share of pgbench's backends in each wait state meanwhile."""
        clients, seconds = self.plan.clients, self.plan.pgbench_seconds
        admin = await asyncpg.connect(self.cluster.admin_dsn)
        done = asyncio.Event()
        sampler = asyncio.create_task(self._sample_waits(admin, done))
        try:
            with tempfile.TemporaryDirectory(prefix="gozon-ceiling-") as directory:
                runs = []
                for service, script in SCRIPTS.items():
                    path = Path(directory) / f"{service}.sql"
                    path.write_text(script)
                    variables = {**self.shared, **self.variables[service]}
                    runs.append(
                        self.bench.pgbench.run_script(self.databases[service], path, clients, seconds, **variables)
                    )
                outputs = await asyncio.gather(*runs)
        finally:
            done.set()
            waits = await sampler
            await admin.close()
        return list(outputs), waits

    async def _sample_waits(self, admin: asyncpg.Connection, done: asyncio.Event) -> dict[str, float]:
        samples: Counter[str] = Counter()
        while not done.is_set():
            for row in await admin.fetch(WAITS, list(self.databases.values())):
                samples[row["wait"]] += row["backends"]
            # asyncio.timeout, not wait_for (see OutboxRelay.run).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT_SAMPLE_SECONDS):
                    await done.wait()
        total = sum(samples.values())
        return {wait: round(count / total, 3) for wait, count in samples.most_common()}

    async def _create(self) -> None:
        """Both databases as the services' migrations make them, and ``users`` funded accounts."""
        admin = await asyncpg.connect(self.cluster.admin_dsn)
        try:
            for database in self.databases.values():
                await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                await admin.execute(f"CREATE DATABASE {database}")
        finally:
            await admin.close()
        for service, dsn in self.dsns.items():
            await migrate.migrate(dsn, service, service_role=None)
        payments = await asyncpg.connect(self.dsns["payments"])
        try:
            await payments.execute(
                "INSERT INTO accounts (user_id, balance) SELECT g::text, $2 FROM generate_series(1, $1) AS g",
                self.plan.users,
                BALANCE,
            )
        finally:
            await payments.close()

    async def _rows(self) -> dict[str, dict[str, int]]:
        """What the run left: every order settled, and few outbox rows unpublished (at most the last relay gap)."""
        rows = {}
        for service, query in ROWS.items():
            connection = await asyncpg.connect(self.dsns[service])
            try:
                rows[service] = dict(await connection.fetchrow(query))
            finally:
                await connection.close()
        return rows

    async def _drop(self) -> None:
        admin = await asyncpg.connect(self.cluster.admin_dsn)
        try:
            for database in self.databases.values():
                await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        finally:
            await admin.close()
