"""Settlement and relay figures read straight from the service databases after (not during) each load, so
observing costs the system under test nothing. All times are the services' own clocks (same machine)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench.load import summary_ms
from stack.postgres import database_name

SETTLE_STAGES = (
    "order created -> command acked by Kafka",
    "command acked -> payments tx start",
    "payments tx start -> result acked by Kafka",
    "result acked -> order settled",
)


@dataclass(frozen=True)
class SettledOrder:
    user_id: str
    status: str
    updated_at: float


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Observer:
    def __init__(
        self, orders: asyncpg.Pool, payments: asyncpg.Pool, admin: asyncpg.Connection, databases: list[str]
    ) -> None:
        self.orders = orders
        self.payments = payments
        self.admin = admin
        self.databases = databases

    @classmethod
    async def connect(cls, urls: dict[str, str], admin_dsn: str) -> Observer:
        # One connection each: the observer never runs two queries at once, and so never opens a second session.
        orders = await asyncpg.create_pool(urls["orders"], min_size=1, max_size=1)
        payments = await asyncpg.create_pool(urls["payments"], min_size=1, max_size=1)
        databases = [database_name(url) for url in urls.values()]
        return cls(orders, payments, await asyncpg.connect(admin_dsn), databases)

    async def close(self) -> None:
        await self.orders.close()
        await self.payments.close()
        await self.admin.close()

    async def sessions(self) -> dict[str, int]:
        """Sessions ever established to each service database (``pg_stat_database.sessions``)."""
        rows = await self.admin.fetch(
            "SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY($1)", self.databases
        )
        return {row["datname"]: row["sessions"] for row in rows}

    async def settled_between(self, start: float, end: float, users: list[str], created_since: float) -> int:
        """Orders of these users created since ``created_since`` that became PAID or FAILED in [start, end) (epoch
        seconds). Orders of earlier steps are left out: a backlog draining would count as throughput."""
        return await self.orders.fetchval(
            "SELECT count(*) FROM orders WHERE status <> 'PENDING' AND updated_at >= $1 AND updated_at < $2 "
            "AND user_id = ANY($3) AND created_at >= $4",
            _at(start),
            _at(end),
            users,
            _at(created_since),
        )

    async def pending(self, order_ids: list[uuid.UUID]) -> int:
        return await self.orders.fetchval(
            "SELECT count(*) FROM orders WHERE status = 'PENDING' AND id = ANY($1)", order_ids
        )

    async def wait_until_settled(self, order_ids: list[uuid.UUID], timeout: float) -> int:
        """Wait until none of these orders is PENDING (or ``timeout``); returns how many still are."""
        deadline = time.monotonic() + timeout
        while True:
            left = await self.pending(order_ids)
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)

    async def orders_by_id(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, SettledOrder]:
        """Owner, status and ``updated_at`` (epoch seconds) of these orders."""
        rows = await self.orders.fetch(
            "SELECT id, user_id, status, extract(epoch FROM updated_at) AS updated_at FROM orders WHERE id = ANY($1)",
            order_ids,
        )
        return {row["id"]: SettledOrder(row["user_id"], row["status"], float(row["updated_at"])) for row in rows}

    async def settlement(self, order_ids: list[uuid.UUID]) -> dict[str, object]:
        """Counts by status and create -> settled percentiles (``updated_at - created_at``) of these orders."""
        rows = await self.orders.fetch(
            "SELECT status, extract(epoch FROM updated_at - created_at) * 1000 AS ms FROM orders WHERE id = ANY($1)",
            order_ids,
        )
        counts = {status: 0 for status in ("PAID", "FAILED", "PENDING")}
        for row in rows:
            counts[row["status"]] += 1
        settled_ms = [float(row["ms"]) for row in rows if row["status"] != "PENDING"]
        return {"counts": counts, "ms": summary_ms(settled_ms)}

    async def settle_stages(self, order_ids: list[uuid.UUID], since: float) -> dict[str, dict[str, float | None]]:
        """Where create -> settled goes, per order, from the stamps the two databases keep: the orders outbox row
        of the payment command (its ``published_at``: the relay stamps it once the broker acked), the ledger row
        (its ``created_at`` is ``now()`` of the payments transaction) and the payments outbox row of the result
        (its ``published_at``).
        Percentiles of the stages do not add up to the total's; their p50s show where the time goes."""
        command_rows = await self.orders.fetch(
            "SELECT o.id, o.created_at, o.updated_at, b.published_at FROM orders o "
            "JOIN outbox b ON (b.payload::jsonb ->> 'order_id')::uuid = o.id "
            "WHERE o.id = ANY($1) AND o.status <> 'PENDING' AND b.created_at >= $2",
            order_ids,
            _at(since),
        )
        result_rows = await self.payments.fetch(
            "SELECT p.order_id, p.created_at, b.published_at FROM payments p "
            "JOIN outbox b ON (b.payload::jsonb ->> 'order_id')::uuid = p.order_id "
            "WHERE p.order_id = ANY($1) AND b.created_at >= $2",
            order_ids,
            _at(since),
        )
        results = {row["order_id"]: row for row in result_rows}
        stages: dict[str, list[float]] = {stage: [] for stage in SETTLE_STAGES}
        for order in command_rows:
            result = results.get(order["id"])
            if result is None or order["published_at"] is None or result["published_at"] is None:
                continue
            stamps = [
                order["created_at"],
                order["published_at"],
                result["created_at"],
                result["published_at"],
                order["updated_at"],
            ]
            for stage, start, end in zip(SETTLE_STAGES, stamps, stamps[1:], strict=False):
                stages[stage].append((end - start).total_seconds() * 1000)
        return {stage: summary_ms(values) for stage, values in stages.items()}

    async def relay_acked_ms(self, start: float, end: float) -> dict[str, dict[str, float | None]]:
        """``published_at - created_at`` of each service's outbox rows written in [start, end). ``created_at`` is
        ``now()`` of the inserting transaction; the relay sets ``published_at = clock_timestamp()`` after the broker
        acked the batch, in the transaction that then commits: so this is insert -> acked, without the commits."""
        query = (
            "SELECT extract(epoch FROM published_at - created_at) * 1000 FROM outbox "
            "WHERE created_at >= $1 AND created_at < $2 AND published_at IS NOT NULL"
        )
        result = {}
        for service, pool in (("orders", self.orders), ("payments", self.payments)):
            rows = await pool.fetch(query, _at(start), _at(end))
            result[service] = summary_ms([float(row[0]) for row in rows])
        return result
