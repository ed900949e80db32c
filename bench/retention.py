"""Retention while writing: old published outbox rows (orders database) and old inbox rows (payments
database, the only service with an inbox) are deleted in bounded batches while orders are being written. How
many rows a second go, and how much the writers notice.

One load of orders at a fixed rate runs through a row of windows: without cleanup, with the services' cleanup,
without again, as many times as it takes to measure ``retention_seconds`` of each kind in windows of about
``WINDOW_SECONDS``; each window is measured after ``SETTLE_SECONDS`` since the switch. The cleanup of a window is
what the two services' housekeeping runs, at once as the two services would: ``OutboxRelay.delete_published`` on
the orders database and ``purge_older_than`` on the payments database, paced as the code paces them, each under a
Tortoise context of its own on one connection, started when its window starts and stopped when it ends. The
samples of all the windows of a kind are pooled. The cleanup's effect is all the windows with it against all the
windows without it, those before and those after (a slow drift of the machine weighs on both alike); the noise
is the windows after a cleanup against those before one, two sets of windows without cleanup of the same size as
the set with it, measured the same way. Then, under a load of its own, the same ``delete_older_than`` unpaced
(``pause=0``) runs to the end, to show what the pacing buys; then ``VACUUM`` and ``CHECKPOINT``. The services'
own once-a-minute cleanup is configured by the bench stack to keep rows for 30 days, so it never takes the seeded
8-day-old rows first.

The insert transaction is timed by a probe on a connection of its own: the same two inserts as ``POST /orders``
(an order, its outbox row) in one transaction, ``retention_probe_rate`` a second, begin to commit. Its outbox row
is inserted already published, so no payment command is sent, and its rows are deleted after the phase.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from tortoise import connections
from tortoise.context import TortoiseContext

from bench import procs
from bench.load import LoadRecord, open_loop, summary_ms
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
# Short windows, alternated, so that what else the machine does falls on windows with and without cleanup alike.
WINDOW_SECONDS = 4.0
# Between a switch and the window's measurement: the cleanup's connection opens or closes, its last batch commits.
SETTLE_SECONDS = 0.5
WITHOUT_BEFORE, WITH, WITHOUT_AFTER, UNPACED = "without, before", "with cleanup", "without, after", "unpaced"

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
# What each service's housekeeping deletes, on the tables that hold old rows.
SERVICES_CLEANUP: dict[str, Callable[[], Awaitable[int]]] = {
    "orders": lambda: OutboxRelay(orders_models.Outbox, service="orders").delete_published(RETENTION_SECONDS),
    "payments": lambda: purge_older_than(payments_models.Inbox, RETENTION_SECONDS),
}
UNPACED_CLEANUP: dict[str, Callable[[], Awaitable[int]]] = {
    "orders": functools.partial(delete_older_than, "outbox", "id", "published_at", RETENTION_SECONDS, pause=0),
    "payments": functools.partial(delete_older_than, "inbox", "message_id", "received_at", RETENTION_SECONDS, pause=0),
}

SUMMARY_ROWS = {
    "without_cleanup_before": WITHOUT_BEFORE,
    "with_cleanup": WITH,
    "without_cleanup_again": WITHOUT_AFTER,
    "without_cleanup": "without, pooled",
    "with_unpaced_cleanup": UNPACED,
}

T = TypeVar("T")


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


@dataclass
class Deleted:
    """What a cleanup did: how long it ran, the CPU its database backends used, and (counted afterwards, from the
    old rows left) how many rows it deleted per table."""

    seconds: float = 0.0
    backend_cpu_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.rows.values())
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 2),
            "rows_per_s": round(total / self.seconds, 1) if self.seconds else None,
            "backend_cpu_cores": round(self.backend_cpu_seconds / self.seconds, 3) if self.seconds else None,
        }


@dataclass(frozen=True)
class Window:
    """One measured stretch of a load: its kind, when (epoch seconds), what each process group and the WAL did."""

    kind: str
    start: float
    end: float
    cpu: dict[str, float]
    wal: dict[str, int]


@dataclass
class Load:
    """Orders at the fixed rate through the gateway, and the insert probe beside them."""

    record: LoadRecord
    probe: InsertProbe
    created: Created = field(default_factory=list)

    def latencies(self, windows: list[Window]) -> dict[str, Any]:
        """Percentiles of the POSTs due and the probe transactions begun in these windows, pooled."""
        post = [ms for w in windows for ms in self.record.latencies_due_between(w.start, w.end)]
        insert = [ms for w in windows for ms in self.probe.ms_between(w.start, w.end)]
        return {"post_ms": summary_ms(post), "insert_ms": summary_ms(insert), "samples": [len(post), len(insert)]}


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
        runs = await self._alternating()
        runs["with_unpaced_cleanup"] = await self._unpaced()
        async with self.bench.progress.phase("VACUUM outbox, inbox; CHECKPOINT"):
            started = time.perf_counter()
            await self._vacuum()
            # What the cleanup left to write out is written now, not during the next phase.
            await self.observer.admin.execute("CHECKPOINT")
            vacuum_seconds = round(time.perf_counter() - started, 2)
        await self._remove_probe_rows()
        without, again = runs["without_cleanup"], runs["without_cleanup_again"]
        return {
            "rate": self.plan.retention_rate,
            "probe_rate": self.plan.retention_probe_rate,
            "seeded": seeded,
            **runs,
            "vacuum_and_checkpoint_seconds": vacuum_seconds,
            "old_rows_left": await self._old_rows(),
            **{
                f"{figure}_{p}_ratio{suffix}": _ratio(run[f"{figure}_ms"][p], baseline[f"{figure}_ms"][p])
                for figure in ("post", "insert")
                for p in ("p50", "p99")
                for suffix, run, baseline in (
                    ("", runs["with_cleanup"], without),
                    ("_unpaced", runs["with_unpaced_cleanup"], without),
                    ("_noise", again, runs["without_cleanup_before"]),
                )
            },
        }

    async def _old_rows(self) -> dict[str, int]:
        """Rows older than the retention, per table."""
        return {
            "outbox": await self.observer.orders.fetchval(OLD_OUTBOX, RETENTION_SECONDS),
            "inbox": await self.observer.payments.fetchval(OLD_INBOX, RETENTION_SECONDS),
        }

    async def _deleted_rows(self, before: dict[str, int]) -> dict[str, int]:
        after = await self._old_rows()
        return {table: rows - after[table] for table, rows in before.items()}

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

    async def _alternating(self) -> dict[str, dict[str, Any]]:
        """Windows without, with and again without the services' cleanup, in turn, under one load."""
        count = max(1, round(self.plan.retention_seconds / WINDOW_SECONDS))
        seconds = self.plan.retention_seconds / count
        kinds = [WITHOUT_BEFORE, WITH, WITHOUT_AFTER] * count
        deleted, old_before = Deleted(), await self._old_rows()

        async def windows() -> list[Window]:
            return [await self._window(kind, seconds, deleted if kind == WITH else None) for kind in kinds]

        planned = self.plan.retention_warmup + len(kinds) * (SETTLE_SECONDS + seconds)
        load, done, bookkeeping = await self._under_load("retention: without / with cleanup", planned, windows)
        deleted.rows = await self._deleted_rows(old_before)
        pooled = {kind: [w for w in done if w.kind == kind] for kind in (WITHOUT_BEFORE, WITH, WITHOUT_AFTER)}
        without = pooled[WITHOUT_BEFORE] + pooled[WITHOUT_AFTER]
        return {
            "without_cleanup": {**bookkeeping, **self._figures(load, without)},
            "with_cleanup": {**bookkeeping, **self._figures(load, pooled[WITH]), "deleted": deleted.as_dict()},
            "without_cleanup_before": {**bookkeeping, **self._figures(load, pooled[WITHOUT_BEFORE])},
            "without_cleanup_again": {**bookkeeping, **self._figures(load, pooled[WITHOUT_AFTER])},
            "each_window": [
                {"kind": w.kind, "seconds": round(w.end - w.start, 2), **load.latencies([w]), "cpu": w.cpu}
                for w in done
            ],
        }

    async def _window(self, kind: str, seconds: float, deleted: Deleted | None) -> Window:
        """One window of the alternating run; with ``deleted``, the services' cleanup runs through it."""
        stop = asyncio.Event()
        cleaning = asyncio.create_task(self._cleanup(SERVICES_CLEANUP, deleted, stop)) if deleted else None
        await asyncio.sleep(SETTLE_SECONDS)
        window = await self._measured(kind, asyncio.sleep(seconds))
        if cleaning:
            stop.set()
            await cleaning
        return window

    async def _unpaced(self) -> dict[str, Any]:
        """The same deletes with ``pause=0``, under load, until no old row is left: what the pacing buys."""
        deleted, old_before = Deleted(), await self._old_rows()

        async def to_the_end() -> list[Window]:
            return [await self._measured(UNPACED, self._cleanup(UNPACED_CLEANUP, deleted))]

        load, done, bookkeeping = await self._under_load("retention: unpaced cleanup", None, to_the_end)
        deleted.rows = await self._deleted_rows(old_before)
        return {**bookkeeping, **self._figures(load, done), "deleted": deleted.as_dict()}

    async def _measured(self, kind: str, body: Awaitable[object]) -> Window:
        """A window around ``body``: its CPU per process group, its WAL and its checkpoints."""
        start, cpu_before, wal_before = time.time(), self.bench.groups.cpu_snapshot(), await self._wal()
        await body
        end, cpu_after, wal_after = time.time(), self.bench.groups.cpu_snapshot(), await self._wal()
        wal = {key: wal_after[key] - wal_before[key] for key in wal_before}
        return Window(kind, start, end, procs.cpu_share(cpu_before, cpu_after), wal)

    async def _cleanup(
        self, work: dict[str, Callable[[], Awaitable[int]]], deleted: Deleted, stop: asyncio.Event | None = None
    ) -> None:
        """Each service's ``work`` on its own database, at once, until done or (when given) until ``stop``."""
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(under_tortoise(self._tortoise_config(service), clean, deleted))
            for service, clean in work.items()
        ]
        if stop:
            await stop.wait()
            for task in tasks:
                task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        deleted.seconds += time.perf_counter() - started
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    async def _under_load(
        self, label: str, planned: float | None, body: Callable[[], Awaitable[T]]
    ) -> tuple[Load, T, dict[str, Any]]:
        """``body`` after the warm-up, with orders at the fixed rate and the insert probe going on until it is done;
        then every order created is waited for until settled. Returns the load, what ``body`` returned, and the
        load's bookkeeping."""
        load = Load(LoadRecord(), InsertProbe(self.urls["orders"], self.topic, self.plan.retention_probe_rate))
        stop = asyncio.Event()
        sender = order_sender(self.bench.gateway, self.bench.users, load.created)
        sending = asyncio.create_task(
            open_loop(self.plan.retention_rate, self.plan.retention_max_seconds, sender, load.record, stop)
        )
        probing = asyncio.create_task(load.probe.run(stop))
        async with self.bench.progress.phase(label, planned, load.record.status):
            try:
                await asyncio.sleep(self.plan.retention_warmup)
                result = await body()
            finally:
                stop.set()
                await asyncio.gather(sending, probing)
        async with self.bench.progress.phase("waiting for settlement"):
            left = await self.observer.wait_until_settled(ids_of(load.created), self.plan.drain_timeout)
        settlement = await self.observer.settlement(ids_of(load.created))
        record = load.record
        return (
            load,
            result,
            {
                "sent": record.sent,
                "created": record.ok,
                "errors": record.errors,
                "errors_by_kind": dict(record.errors_by_kind),
                "left_pending": left,
                "settle_ms": settlement["ms"],
            },
        )

    @staticmethod
    def _figures(load: Load, windows: list[Window]) -> dict[str, Any]:
        """The pooled figures of these windows: latencies, CPU per process group (the windows' mean), WAL."""
        groups = windows[0].cpu.keys()
        return {
            "windows": len(windows),
            "window_seconds": round(sum(w.end - w.start for w in windows), 2),
            **load.latencies(windows),
            "cpu": {group: round(statistics.fmean(w.cpu[group] for w in windows), 3) for group in groups},
            "wal_mib": round(sum(w.wal["lsn"] for w in windows) / 2**20, 1),
            "wal_full_page_images": sum(w.wal["full_page_images"] for w in windows),
            "checkpoints": sum(w.wal["checkpoints"] for w in windows),
        }

    async def _wal(self) -> dict[str, int]:
        """Where the WAL is (bytes), how many full-page images it holds (as the backends report them to the
        statistics, up to about a second late) and how many checkpoints there have been."""
        row = await self.observer.admin.fetchrow(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn, "
            "(SELECT wal_fpi FROM pg_stat_wal) AS full_page_images, "
            "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints"
        )
        return dict(row)

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


def accounted(result: dict[str, Any]) -> bool:
    """Every request answered or failed, every order settled, no old row left."""
    runs = [result[key] for key in ("without_cleanup", "with_unpaced_cleanup")]
    settled = all(r["sent"] == r["created"] + r["errors"] and r["left_pending"] == 0 for r in runs)
    return settled and not any(result["old_rows_left"].values())


def summary(result: dict[str, Any]) -> list[str]:
    """The phase's figures as a few lines of text: each kind of window pooled, then the ratios."""
    seeded, with_cleanup = result["seeded"], result["with_cleanup"]
    lines = [
        f"retention: {seeded['outbox']:,} outbox + {seeded['inbox']:,} inbox rows 8 days old; orders at "
        f"{result['rate']:.0f}/s, insert probe at {result['probe_rate']:.0f}/s; {with_cleanup['windows']} x "
        f"(without, with, without) windows of {with_cleanup['window_seconds'] / with_cleanup['windows']:.1f} s",
        f"{'windows':<18}{'seconds':>8}{'rows/s':>9}{'WAL MiB':>8}{'FPIs':>7}{'POST p50':>9}{'p99':>7}"
        f"{'insert p50':>11}{'p99':>7}{'samples':>12}",
    ]
    for key, label in SUMMARY_ROWS.items():
        lines.append(_summary_row(label, result[key]))
    lines.append(
        "p99 ratios: with / without "
        f"POST {result['post_p99_ratio']:.3f} insert {result['insert_p99_ratio']:.3f}; noise, after / before "
        f"POST {result['post_p99_ratio_noise']:.3f} insert {result['insert_p99_ratio_noise']:.3f}; unpaced / without "
        f"POST {result['post_p99_ratio_unpaced']:.3f} insert {result['insert_p99_ratio_unpaced']:.3f}"
    )
    return lines


def _summary_row(label: str, run: dict[str, Any]) -> str:
    rows_per_s = run["deleted"]["rows_per_s"] if "deleted" in run else None
    post, insert = run["post_ms"], run["insert_ms"]
    return (
        f"{label:<18}{run['window_seconds']:>8.1f}{rows_per_s or 0:>9,.0f}{run['wal_mib']:>8.1f}"
        f"{run['wal_full_page_images']:>7,}{post['p50']:>9.2f}{post['p99']:>7.2f}{insert['p50']:>11.2f}{insert['p99']:>7.2f}"
        f"{'/'.join(map(str, run['samples'])):>12}"
    )
