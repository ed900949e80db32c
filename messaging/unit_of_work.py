"""A unit of work: one database transaction, run so that its failure cannot outlive it, and what must happen once
it committed, done by itself: the work its code deferred (``messaging.after_commit``), and a wake-up of the outbox
relay when it wrote outbox rows. Nobody announces by hand.

A use case that needs several statements to be atomic takes a ``UnitOfWork`` (its caller owns the transaction:
the consumer, the Idempotency-Key's bookkeeping); one that owns its transaction takes ``Transactions`` and runs it.
A use case that is one statement returns that statement (``messaging.sql.Sql``): atomic on its own, it is run alone,
without BEGIN and COMMIT, or inside a caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from messaging import after_commit, sql
from messaging.after_commit import Deferred
from messaging.context import in_own_context
from messaging.sql import Row, Sql

T = TypeVar("T")


class UnitOfWork:
    """The statements of one transaction; the ORM uses ``conn``. Notes whether a statement wrote outbox rows."""

    __slots__ = ("conn", "wrote_outbox")

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.conn = conn
        self.wrote_outbox = False

    async def execute(self, statement: Sql) -> int:
        self.wrote_outbox |= statement.writes_outbox
        return await sql.execute(self.conn, statement)

    async def fetch_all(self, statement: Sql, row: type[Row]) -> list[Row]:
        self.wrote_outbox |= statement.writes_outbox
        return await sql.fetch_all(self.conn, statement, row)

    async def fetch_one(self, statement: Sql, row: type[Row]) -> Row:
        self.wrote_outbox |= statement.writes_outbox
        return await sql.fetch_one(self.conn, statement, row)


class Transactions:
    """Runs units of work in the service's database, and wakes ``relay`` after one that wrote outbox rows."""

    def __init__(self, relay: Callable[[], None]) -> None:
        self._relay = relay

    async def run(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """``work`` in one transaction, in a task of its own (``in_own_context``)."""
        return await in_own_context(self._run(work))

    async def run_alone(self, statement: Sql) -> int:
        """A statement that is atomic on its own, outside any transaction: no BEGIN and COMMIT round trips."""
        work = UnitOfWork(connections.get("default"))
        affected = await work.execute(statement)
        self.committed(work, [])
        return affected

    def committed(self, work: UnitOfWork, deferred: list[Deferred]) -> None:
        """What follows the commit of ``work``, for a caller that ran the transaction itself (the consumer)."""
        after_commit.run(deferred)
        if work.wrote_outbox:
            self._relay()

    async def _run(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        with after_commit.collected() as deferred:
            async with in_transaction() as conn:
                unit = UnitOfWork(conn)
                result = await work(unit)
        self.committed(unit, deferred)
        return result
