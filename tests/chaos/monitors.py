"""What is watched every second while the faults run: the ledger's invariants, in one consistent snapshot of
the payments database; whether orders keep settling (a bad message must never hold the others up for longer than
the retry budget); and the consumer groups' membership (each change of a stable group is a rebalance)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.chaos import kafka_tools
from tests.chaos.findings import Findings

log = logging.getLogger("chaos.monitors")

INTERVAL = 1.0

# deposits - debits = balance, and no balance below zero, for every account; and no debit without an account.
LEDGER_VIOLATIONS = """
SELECT a.user_id, a.balance, coalesce(d.total, 0) AS deposits, coalesce(p.total, 0) AS debits
FROM accounts a
LEFT JOIN (SELECT user_id, sum(amount) AS total FROM deposits GROUP BY user_id) d USING (user_id)
LEFT JOIN (SELECT user_id, sum(amount) AS total FROM payments WHERE status = 'SUCCEEDED' GROUP BY user_id) p
    USING (user_id)
WHERE a.balance <> coalesce(d.total, 0) - coalesce(p.total, 0) OR a.balance < 0
UNION ALL
SELECT p.user_id, NULL, NULL, sum(p.amount)
FROM payments p
WHERE p.status = 'SUCCEEDED' AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = p.user_id)
GROUP BY p.user_id
"""


class LedgerMonitor:
    def __init__(self, dsn: str, findings: Findings) -> None:
        self._dsn = dsn
        self._findings = findings
        self.samples = 0
        self.missed = 0
        """Seconds in which the database could not be read (it was down)."""

    async def run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    conn = conn if conn and not conn.is_closed() else await asyncpg.connect(self._dsn, timeout=2)
                    await self.sample(conn)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    self.missed += 1
                    if conn:
                        conn.terminate()
                    conn = None
                await asyncio.sleep(INTERVAL)
        finally:
            if conn:
                conn.terminate()

    async def sample(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(LEDGER_VIOLATIONS, timeout=10)
        self.samples += 1
        for row in rows:
            self._findings.violation(
                "ledger invariant",
                f"{row['user_id']}: balance {row['balance']}, deposits {row['deposits']}, debits {row['debits']}",
            )


# How long no order has settled while one has been waiting: 0 when none waits.
SETTLEMENT_STALL = """
SELECT coalesce(extract(epoch FROM now() - greatest(
    (SELECT max(updated_at) FROM orders WHERE status <> 'PENDING'),
    (SELECT min(created_at) FROM orders WHERE status = 'PENDING' AND user_id NOT LIKE $1 || '%')
)), 0) AS seconds
WHERE EXISTS (SELECT FROM orders WHERE status = 'PENDING' AND user_id NOT LIKE $1 || '%')
"""


@dataclass
class Stall:
    started: float
    ended: float
    longest: float


class SettlementMonitor:
    """Records each stretch during which an order waited and none settled for longer than ``limit`` seconds.
    Orders whose user id starts with ``awaiting_deadline`` wait on purpose and are left out."""

    def __init__(self, dsn: str, limit: float, awaiting_deadline: str) -> None:
        self._dsn = dsn
        self._limit = limit
        self._awaiting_deadline = awaiting_deadline
        self._current: Stall | None = None
        self.stalls: list[Stall] = []
        self.longest = 0.0

    async def run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    conn = conn if conn and not conn.is_closed() else await asyncpg.connect(self._dsn, timeout=2)
                    seconds = float(await conn.fetchval(SETTLEMENT_STALL, self._awaiting_deadline, timeout=5) or 0)
                    self._observe(seconds)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    if conn:
                        conn.terminate()
                    conn = None
                await asyncio.sleep(INTERVAL)
        finally:
            self._observe(0.0)
            if conn:
                conn.terminate()

    def _observe(self, seconds: float) -> None:
        self.longest = max(self.longest, seconds)
        now = time.time()
        if seconds > self._limit:
            if self._current is None:
                self._current = Stall(now - seconds + self._limit, now, seconds)
                self.stalls.append(self._current)
            self._current.ended, self._current.longest = now, max(self._current.longest, seconds)
        else:
            self._current = None


class GroupMonitor:
    """Counts rebalances as changes between the stable memberships seen; two within one second count once."""

    def __init__(self, bootstrap_servers: str, groups: dict[str, str]) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._groups = groups
        self._last: dict[str, frozenset[str]] = {}
        self.rebalances = dict.fromkeys(groups, 0)

    async def run(self) -> None:
        while True:
            try:
                async with kafka_tools.admin(self._bootstrap_servers) as client:
                    while True:
                        await self._sample(client)
                        await asyncio.sleep(INTERVAL)
            except (KafkaError, OSError) as exc:
                log.debug("consumer groups unreadable: %s", exc)
                await asyncio.sleep(INTERVAL)

    async def _sample(self, client: AIOKafkaAdminClient) -> None:
        for group, topic in self._groups.items():
            state = await kafka_tools.describe_group(client, group, topic)
            if state.state != "Stable":
                continue
            members = frozenset(state.members)
            if group in self._last and self._last[group] != members:
                self.rebalances[group] += 1
            self._last[group] = members


@contextlib.asynccontextmanager
async def running(*monitors: LedgerMonitor | GroupMonitor | SettlementMonitor) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(monitor.run()) for monitor in monitors]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
