"""A transaction whose connection dies as it is released (a database restart) must not break the transactions
that the same long-lived task runs after it: the consumers and the relay run in such tasks for the life of the
process, and Sanic serves all the requests of a keep-alive connection in one task. The chaos runs caught an
orders consumer retrying one message for twenty minutes, and an instance answering 503 for minutes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from messaging.context import in_own_context
from messaging.unit_of_work import Transactions, UnitOfWork
from orders.models import OrdersIdempotencyKey
from servicekit.service import idempotency
from servicekit.service.settings import release_connection

pytestmark = pytest.mark.usefixtures("orders_orm")


class ServerWentAway(asyncpg.AdminShutdownError):
    def __init__(self) -> None:
        super().__init__("terminating connection due to administrator command")


@pytest.fixture
async def release_fails_once() -> AsyncIterator[None]:
    """The next release of a pooled connection fails as a ROLLBACK does while the server shuts down."""
    client = connections.get("default")
    await client.execute_query("SELECT 1")  # the pool is made on first use
    pool = client._pool
    original = pool._reset

    async def failing(conn: asyncpg.Connection) -> None:
        pool._reset = original
        raise ServerWentAway

    pool._reset = failing
    yield
    pool._reset = original


async def a_transaction_whose_release_fails() -> None:
    async with in_transaction() as conn:
        await conn.execute_query("SELECT 1")


@pytest.mark.usefixtures("release_fails_once")
async def test_the_next_transaction_of_the_task_works_after_a_failed_release() -> None:
    with pytest.raises(ServerWentAway):
        await in_own_context(a_transaction_whose_release_fails())

    async with in_transaction() as conn:
        _, rows = await conn.execute_query("SELECT 1 AS one")
    assert rows[0]["one"] == 1


async def answer(work: UnitOfWork) -> idempotency.Reply:
    await work.conn.execute_query("SELECT 1")
    return 200, {}


async def request() -> idempotency.Outcome:
    return await idempotency.run_once(
        OrdersIdempotencyKey,
        Transactions(relay=lambda: None),
        user_id="context-user",
        key=None,
        request_fingerprint="f",
        action=answer,
    )


@pytest.mark.usefixtures("release_fails_once")
async def test_the_next_request_on_a_connection_works_after_a_failed_release() -> None:
    with pytest.raises(ServerWentAway):
        await request()

    assert (await request()).status == 200


class FakeConnection:
    def __init__(self) -> None:
        self.terminated = False

    def is_in_transaction(self) -> bool:
        return True

    async def execute(self, _query: str) -> None:
        raise ServerWentAway

    def terminate(self) -> None:
        self.terminated = True


async def test_a_connection_that_cannot_roll_back_is_terminated_not_raised() -> None:
    conn = FakeConnection()
    await release_connection(conn)  # type: ignore[arg-type]
    assert conn.terminated
