"""A week of settled traffic written straight into both service databases with set-based SQL: ``orders`` orders
over ``orders / orders_per_user`` users, each order's ledger row, and each user's account and deposit.

Every value is a function of the order's number ``g`` (0 ... orders - 1), so the two databases derive the same
orders without passing rows between them. Order ``g`` belongs to user ``g mod users`` and was created at
``first_at + g * spacing``: the rows go in in time order, as a service writes them, which keeps the inserts into
the primary keys and the ``updated_at`` index at their right-hand edge, and the user index sweeps left to right
once per ``users`` orders. The ids end in ``g`` in hex: rising, unlike the services' random uuid4s, so the primary
keys take appends, not 10 M random inserts (no operations query looks an order up by its id).

About 97 % of the orders are PAID; every 33rd is FAILED with INSUFFICIENT_FUNDS, for an amount no preloaded user
ever had. Each account opened with one deposit of its opening balance plus all its paid orders, so its balance
is the opening balance, and the ledger adds up: balance = deposits - successful payments >= 0. Nothing is
PENDING and nothing goes to the outbox, so the services' deadline and relays have nothing to do with these rows.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

CHUNK_ORDERS = 1_000_000
"""Orders per INSERT statement: few statements, each short enough to show progress."""
FAILED_EVERY = 33
OPENING_BALANCE = Decimal("100.00")
UNAFFORDABLE = Decimal("5000.00")
"""A failed order's amount: more than any preloaded account ever held (its deposit is at most 100 + 10 x 10.99)."""
WEEK = timedelta(days=7)
NEWEST_AGE = timedelta(hours=1)
"""The newest preloaded order is this old, far outside the Operations page's 5-minute window."""

ORDERS = """
INSERT INTO orders (id, user_id, amount, description, status, failure_reason, created_at, updated_at)
SELECT {order_id}, {user_id}, {amount}, 'bench: preloaded',
       CASE WHEN {paid} THEN 'PAID' ELSE 'FAILED' END, CASE WHEN {paid} THEN NULL ELSE 'INSUFFICIENT_FUNDS' END,
       {created_at}, {created_at} + interval '6 ms'
FROM generate_series($1::bigint, $2::bigint) AS g
"""
LEDGER = """
INSERT INTO payments (order_id, user_id, amount, status, failure_reason, message_id, created_at)
SELECT {order_id}, {user_id}, {amount},
       CASE WHEN {paid} THEN 'SUCCEEDED' ELSE 'FAILED' END, CASE WHEN {paid} THEN NULL ELSE 'INSUFFICIENT_FUNDS' END,
       gen_random_uuid(), {created_at} + interval '3 ms'
FROM generate_series($1::bigint, $2::bigint) AS g
"""
ACCOUNTS = """
INSERT INTO accounts (user_id, balance, created_at, updated_at)
SELECT {user_of_u}, {opening_balance}, {opened_at}, {last_at}
FROM generate_series(0, {last_user}) AS u
"""
# A user's orders are g = u, u + users, u + 2 users, ...: summed from the series, not from a 10 M-row table.
DEPOSITS = """
INSERT INTO deposits (user_id, amount, created_at)
SELECT {user_of_u},
       {opening_balance} + (SELECT coalesce(sum({amount}), 0) FROM generate_series(u, {last_order}, {users}) AS g
                            WHERE {paid}),
       {opened_at}
FROM generate_series(0, {last_user}) AS u
"""


@dataclass(frozen=True)
class Shape:
    """How many orders and users, and where in time and key space they lie."""

    orders: int
    users: int
    tag: str
    """12 hex digits: the preload's own prefix of order ids and user ids."""
    first_at: datetime

    @classmethod
    def of(cls, orders: int, orders_per_user: int, now: datetime) -> Shape:
        return cls(orders, max(1, orders // orders_per_user), secrets.token_hex(6), now - WEEK)

    @property
    def user_prefix(self) -> str:
        return f"ops-{self.tag}-"

    @property
    def spacing_seconds(self) -> float:
        return (WEEK - NEWEST_AGE).total_seconds() / self.orders

    def sql(self, template: str) -> str:
        """The template with this shape's expressions of ``g`` (an order's number) and ``u`` (a user's)."""
        paid = f"g % {FAILED_EVERY} <> 0"
        created_at = f"(timestamptz '{self.first_at.isoformat()}' + make_interval(secs => g * {self.spacing_seconds}))"
        return template.format(
            # Shaped as a version 4 uuid (version and variant digits), rising with g.
            order_id=f"('{self.tag}' || '40008' || lpad(to_hex(g), 15, '0'))::uuid",
            user_id=f"'{self.user_prefix}' || lpad((g % {self.users})::text, 8, '0')",
            user_of_u=f"'{self.user_prefix}' || lpad(u::text, 8, '0')",
            paid=paid,
            amount=f"CASE WHEN {paid} THEN (100 + g % 1000) / 100.0 ELSE {UNAFFORDABLE} END",
            created_at=created_at,
            opening_balance=OPENING_BALANCE,
            opened_at=f"timestamptz '{(self.first_at - NEWEST_AGE).isoformat()}'",
            last_at=f"timestamptz '{(self.first_at + WEEK - NEWEST_AGE).isoformat()}'",
            users=self.users,
            last_user=self.users - 1,
            last_order=self.orders - 1,
        )

    def chunks(self) -> list[tuple[int, int]]:
        """(first, last) order numbers of each INSERT."""
        return [(first, min(first + CHUNK_ORDERS, self.orders) - 1) for first in range(0, self.orders, CHUNK_ORDERS)]


def _rows(status: str) -> int:
    """The row count of an ``INSERT 0 <n>`` command tag."""
    return int(status.rsplit(" ", 1)[1])


class Preload:
    """Writes a shape into the orders and payments databases, then vacuums, analyzes and checkpoints."""

    def __init__(self, urls: dict[str, str], admin: asyncpg.Connection, shape: Shape) -> None:
        self.urls = urls
        self.admin = admin
        self.shape = shape
        self.orders_done = 0
        """Orders written so far, for a progress line."""

    async def run(self) -> dict[str, Any]:
        """Rows written per table and how long each step took: inserts (both databases at once), VACUUM
        (ANALYZE), CHECKPOINT."""
        started = time.perf_counter()
        orders, payments = await asyncio.gather(
            self._in_session("orders", self._orders), self._in_session("payments", self._payments)
        )
        inserted = time.perf_counter()
        # Vacuumed now, not by autovacuum while the loaded databases are measured: that is the state a week of
        # traffic leaves (visibility map set, statistics current). The checkpoint writes out what is dirty.
        await asyncio.gather(
            self._in_session("orders", _vacuumed("orders")),
            self._in_session("payments", _vacuumed("payments", "accounts", "deposits")),
        )
        vacuumed = time.perf_counter()
        await self.admin.execute("CHECKPOINT")
        done = time.perf_counter()
        return {
            "orders": self.shape.orders,
            "users": self.shape.users,
            "rows": {"orders": orders, **payments},
            "insert_seconds": round(inserted - started, 1),
            "vacuum_analyze_seconds": round(vacuumed - inserted, 1),
            "checkpoint_seconds": round(done - vacuumed, 1),
            "seconds": round(done - started, 1),
        }

    async def _in_session(self, database: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        connection = await asyncpg.connect(self.urls[database])
        try:
            return await work(connection)
        finally:
            await connection.close()

    async def _orders(self, connection: asyncpg.Connection) -> int:
        statement, rows = self.shape.sql(ORDERS), 0
        for first, last in self.shape.chunks():
            rows += _rows(await connection.execute(statement, first, last))
            self.orders_done = rows
        return rows

    async def _payments(self, connection: asyncpg.Connection) -> dict[str, int]:
        accounts = _rows(await connection.execute(self.shape.sql(ACCOUNTS)))
        statement, ledger = self.shape.sql(LEDGER), 0
        for first, last in self.shape.chunks():
            ledger += _rows(await connection.execute(statement, first, last))
        deposits = _rows(await connection.execute(self.shape.sql(DEPOSITS)))
        return {"payments": ledger, "accounts": accounts, "deposits": deposits}


def _vacuumed(*tables: str) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    async def vacuum(connection: asyncpg.Connection) -> None:
        await connection.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")

    return vacuum
