"""Retention while writing (issue 10): old published outbox rows (orders database) and old inbox rows (payments
database, the only service with an inbox) are deleted in bounded batches while orders are being written. How
many rows a second go, and how much the writers notice.

Runs at the same fixed order rate, one after the other: without cleanup; with the services' cleanup as it is
(``OutboxRelay.delete_published`` then ``purge_older_than``, which pause between batches), stopped when the load
ends; with the same ``delete_older_than`` unpaced (``pause=0``) run to the end, the load going on until it is
done, to show what the pacing buys; then ``VACUUM`` and ``CHECKPOINT``, so what the deletes left to write is
written; and without cleanup again, to show how much two runs differ anyway. The cleanups run in this process
under a Tortoise context of their own, on one connection; the services' once-a-minute cleanup is configured by
the bench stack to keep rows for 30 days, so it never takes the seeded 8-day-old rows first.

The insert transaction is timed by a probe on a connection of its own: the same two inserts as ``POST /orders``
(an order, its outbox row) in one transaction, ``retention_probe_rate`` a second, begin to commit. Its outbox row
is inserted already published, so no payment command is sent, and its rows are deleted after the phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
from tortoise import connections
from tortoise.context import TortoiseContext

from bench import procs
from bench.load import LoadRecord, Send, open_loop, summary_ms
from bench.workload import Created, ids_of, order_sender
from messaging.events import Envelope, PaymentRequested
from messaging.inbox import purge_older_than
from messaging.outbox import OutboxRelay, lane_of
from messaging.retention import delete_older_than
from orders import models as orders_models
from orders import settings as orders_settings
from payments import models as payments_models
from payments import settings as payments_settings

if TYPE_CHECKING:
    from bench.phases import Bench

RETENTION_SECONDS = 7 * 86400
SEED_AGE = "8 days"
# What the bench stack's services keep (ORDERS_/PAYMENTS_RETENTION_SECONDS): longer than the seeded rows' age.
SERVICE_RETENTION_SECONDS = 30 * 86400
PROBE_USER = "bench-insert-probe"

# Row i is SEED_AGE + i/100 s old: 100 rows a second, as if written over the hours before SEED_AGE.
SEED_STAMPS = (
    "generate_series(1, $1) AS i "
    f"CROSS JOIN LATERAL (SELECT now() - interval '{SEED_AGE}' - make_interval(secs => i / 100.0) AS at) AS stamp"
)
SEED_OUTBOX = (
    "INSERT INTO outbox (message_id, topic, key, lane, payload, created_at, published_at) "
    f"SELECT gen_random_uuid(), $2, 'retention-seed-' || (i % 200), i % 16, $3, at, at FROM {SEED_STAMPS}"
)
SEED_INBOX = f"INSERT INTO inbox (message_id, received_at) SELECT gen_random_uuid(), at FROM {SEED_STAMPS}"
OLD_OUTBOX = "SELECT count(*) FROM outbox WHERE published_at < now() - make_interval(secs => $1)"
OLD_INBOX = "SELECT count(*) FROM inbox WHERE received_at < now() - make_interval(secs => $1)"
PROBE_ORDER = (
    "INSERT INTO orders (id, user_id, amount, description, status, created_at, updated_at) "
    "VALUES ($1, $2, 1.00, 'bench probe', 'PENDING', now(), now())"
)
PROBE_OUTBOX = (
    "INSERT INTO outbox (message_id, topic, key, lane, payload, created_at, published_at) "
    "VALUES ($1, $2, $3, $4, $5, now(), now())"
)


def sample_payload() -> str:
    return Envelope(PaymentRequested(order_id=uuid.uuid4(), user_id="retention-seed", amount=Decimal("1.00"))).to_json()


class InsertProbe:
    """Times one order-shaped insert transaction after another, ``rate`` a second, until stopped."""

    def __init__(self, dsn: str, topic: str, rate: float) -> None:
        self._dsn = dsn
        self._topic = topic
        self._interval = 1 / rate
        self._payload = sample_payload()
        self.samples: list[tuple[float, float]] = []

    def ms_between(self, start: float, end: float) -> list[float]:
        """Durations (ms) of the transactions begun in [start, end), epoch seconds."""
        return [ms for begun, ms in self.samples if start <= begun < end]

    async def run(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            while not stop.is_set():
                begun, started = time.time(), time.perf_counter()
                async with conn.transaction():
                    await conn.execute(PROBE_ORDER, uuid.uuid4(), PROBE_USER)
                    await conn.execute(
                        PROBE_OUTBOX, uuid.uuid4(), self._topic, PROBE_USER, lane_of(PROBE_USER), self._payload
                    )
                elapsed = time.perf_counter() - started
                self.samples.append((begun, elapsed * 1000))
                await asyncio.sleep(max(0.0, self._interval - elapsed))
        finally:
            await conn.close()


async def under_tortoise(config: dict[str, Any], work: Callable[[], Awaitable[int]], deleted: Deleted) -> None:
    """``work`` with Tortoise initialised on one service database, in a context of its own (no global state) and on
    one connection, whose backend's CPU time is added to ``deleted`` (even when ``work`` is cancelled)."""
    config["connections"]["default"]["credentials"]["maxsize"] = 1
    async with TortoiseContext() as context:
        await context.init(config=config)
        _, rows = await connections.get("default").execute_query("SELECT pg_backend_pid() AS pid")
        try:
            await work()
        finally:
            deleted.backend_cpu_seconds += procs.cpu_seconds(rows[0]["pid"])


@dataclass
class Deleted:
    """One cleanup: when it ran, the CPU its database backends used, and (counted afterwards) what it deleted."""

    started_at: float
    ended_at: float = 0.0
    backend_cpu_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        wall = self.ended_at - self.started_at
        return {
            "rows": self.rows,
            "seconds": round(wall, 2),
            "rows_per_s": round(sum(self.rows.values()) / wall, 1) if wall else None,
            "backend_cpu_cores": round(self.backend_cpu_seconds / wall, 3) if wall else None,
        }


Cleanup = Callable[[asyncio.Event], Awaitable[Deleted]]


class Retention:
    """One run of the retention benchmark; ``measure()`` returns its figures."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        self.observer = bench.observer
        self.urls = bench.stack.database_urls
        self.topic = bench.stack.topics.payment_commands

    async def measure(self) -> dict[str, Any]:
        seeded = await self._seed()
        without = await self._run("without cleanup")
        during = await self._run("services' cleanup", self._services_cleanup)
        unpaced = await self._run("unpaced cleanup", self._unpaced_cleanup, until_cleaned=True)
        async with self.bench.progress.phase("VACUUM outbox, inbox; CHECKPOINT"):
            started = time.perf_counter()
            await self._vacuum()
            # What the cleanup left to write out is written now, not during the next run.
            await self.observer.admin.execute("CHECKPOINT")
            vacuum_seconds = round(time.perf_counter() - started, 2)
        again = await self._run("without cleanup, again")
        await self._remove_probe_rows()
        return {
            "rate": self.plan.retention_rate,
            "seeded": seeded,
            "without_cleanup": without,
            "with_cleanup": during,
            "with_unpaced_cleanup": unpaced,
            "without_cleanup_again": again,
            "vacuum_and_checkpoint_seconds": vacuum_seconds,
            "old_rows_left": await self._old_rows(),
            **{
                f"{figure}_{p}_ratio{suffix}": _ratio(run[f"{figure}_ms"][p], without[f"{figure}_ms"][p])
                for figure in ("post", "insert")
                for p in ("p50", "p99")
                for suffix, run in (("", during), ("_unpaced", unpaced), ("_noise", again))
            },
        }

    async def _old_rows(self) -> dict[str, int]:
        """Rows older than the retention, per table."""
        return {
            "outbox": await self.observer.orders.fetchval(OLD_OUTBOX, RETENTION_SECONDS),
            "inbox": await self.observer.payments.fetchval(OLD_INBOX, RETENTION_SECONDS),
        }

    async def _seed(self) -> dict[str, Any]:
        """Old rows as a week of traffic leaves them: published, vacuumed, and written out by a checkpoint, so that
        deleting them costs what it would (full-page images in the WAL included)."""
        outbox, inbox = self.plan.retention_outbox_rows, self.plan.retention_inbox_rows
        async with self.bench.progress.phase(f"seeding {outbox:,} outbox + {inbox:,} inbox rows"):
            started = time.perf_counter()
            await self.observer.orders.execute(SEED_OUTBOX, outbox, self.topic, sample_payload())
            await self.observer.payments.execute(SEED_INBOX, inbox)
            await self._vacuum()
            await self.observer.admin.execute("CHECKPOINT")
        return {**await self._old_rows(), "seconds": round(time.perf_counter() - started, 2)}

    async def _vacuum(self) -> None:
        await self.observer.orders.execute("VACUUM (ANALYZE) outbox")
        await self.observer.payments.execute("VACUUM (ANALYZE) inbox")

    async def _run(self, label: str, cleanup: Cleanup | None = None, until_cleaned: bool = False) -> dict[str, Any]:
        """Orders at the fixed rate, with the insert probe beside them. A ``cleanup`` starts after the warm-up and
        is told when the load ends; with ``until_cleaned`` the load goes on until the cleanup is done instead.
        Percentiles are of the requests due in the window: while the cleanup ran, else after the warm-up. What a
        cleanup deleted is counted afterwards, from the old rows left."""
        created: Created = []
        old_before = await self._old_rows() if cleanup else {}
        record, load_ended, cleaned, probe_stop = LoadRecord(), asyncio.Event(), asyncio.Event(), asyncio.Event()
        probe = InsertProbe(self.urls["orders"], self.topic, self.plan.retention_probe_rate)
        seconds = self.plan.retention_max_seconds if until_cleaned else self.plan.retention_seconds
        before, wal_before = self.bench.groups.cpu_snapshot(), await self._wal()
        probing = asyncio.create_task(probe.run(probe_stop))
        cleaning = asyncio.create_task(self._after_warm_up(cleanup, load_ended, cleaned)) if cleanup else None
        async with self.bench.progress.phase(f"retention: {label}", None if until_cleaned else seconds, record.status):
            await open_loop(self.plan.retention_rate, seconds, self._sender(created), record, cleaned)
            load_ended.set()
            deleted = await cleaning if cleaning else None
            probe_stop.set()
            await probing
        cpu = procs.cpu_share(before, self.bench.groups.cpu_snapshot())
        wal = await self._wal()
        if deleted:
            window = (deleted.started_at, min(deleted.ended_at, record.ended_at))
            deleted.rows = {
                table: rows - left
                for (table, rows), left in zip(old_before.items(), (await self._old_rows()).values(), strict=True)
            }
        else:
            window = (record.started_at + self.plan.retention_warmup, record.ended_at)
        async with self.bench.progress.phase("waiting for settlement"):
            left = await self.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)
        settlement = await self.observer.settlement(ids_of(created))
        return {
            "sent": record.sent,
            "created": record.ok,
            "errors": record.errors,
            "errors_by_kind": dict(record.errors_by_kind),
            "left_pending": left,
            "window_seconds": round(window[1] - window[0], 2),
            "post_ms": summary_ms(record.latencies_due_between(*window)),
            "insert_ms": summary_ms(probe.ms_between(*window)),
            "settle_ms": settlement["ms"],
            "cpu": cpu,
            "wal_mib": round((wal["lsn"] - wal_before["lsn"]) / 2**20, 1),
            "checkpoints": wal["checkpoints"] - wal_before["checkpoints"],
            **({"deleted": deleted.as_dict()} if deleted else {}),
        }

    def _sender(self, created: Created) -> Send:
        return order_sender(self.bench.gateway, self.bench.users, created)

    async def _wal(self) -> dict[str, int]:
        """Where the WAL is (bytes) and how many checkpoints there have been."""
        row = await self.observer.admin.fetchrow(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn, "
            "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints"
        )
        return dict(row)

    async def _after_warm_up(self, cleanup: Cleanup, load_ended: asyncio.Event, cleaned: asyncio.Event) -> Deleted:
        await asyncio.sleep(self.plan.retention_warmup)
        try:
            deleted = await cleanup(load_ended)
        finally:
            cleaned.set()
        deleted.ended_at = time.time()
        return deleted

    async def _services_cleanup(self, load_ended: asyncio.Event) -> Deleted:
        """What the services' housekeeping runs (published outbox rows, then old inbox rows, paced as the code
        paces them), until it is done or the load ends."""
        deleted = Deleted(time.time())

        async def clean() -> None:
            outbox = OutboxRelay(orders_models.Outbox)
            await under_tortoise(
                self._tortoise_config("orders"), lambda: outbox.delete_published(RETENTION_SECONDS), deleted
            )
            inbox = payments_models.Inbox
            await under_tortoise(
                self._tortoise_config("payments"), lambda: purge_older_than(inbox, RETENTION_SECONDS), deleted
            )

        cleaning, stopping = asyncio.create_task(clean()), asyncio.create_task(load_ended.wait())
        await asyncio.wait({cleaning, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (cleaning, stopping):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleaning
        return deleted

    async def _unpaced_cleanup(self, _load_ended: asyncio.Event) -> Deleted:
        """The same deletes with ``pause=0``, to the end: what the pacing buys."""
        deleted = Deleted(time.time())
        for service, table, key, stamp in (
            ("orders", "outbox", "id", "published_at"),
            ("payments", "inbox", "message_id", "received_at"),
        ):
            await under_tortoise(
                self._tortoise_config(service),
                functools.partial(delete_older_than, table, key, stamp, RETENTION_SECONDS, pause=0),
                deleted,
            )
        return deleted

    def _tortoise_config(self, service: str) -> dict[str, Any]:
        """The service's own ORM configuration, pointed at the bench stack's database."""
        settings = {"orders": orders_settings, "payments": payments_settings}[service]
        env = {f"{service.upper()}_DATABASE_URL": self.urls[service]}
        return settings.from_env(env).tortoise_config(f"{service}.models")

    async def _remove_probe_rows(self) -> None:
        await self.observer.orders.execute("DELETE FROM outbox WHERE key = $1", PROBE_USER)
        await self.observer.orders.execute("DELETE FROM orders WHERE user_id = $1", PROBE_USER)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)
