"""A service told to stop (SIGTERM, as a supervisor, a deploy or Ctrl-C does) lets the requests in flight finish
against its database, then exits on its own, well before a supervisor would resort to SIGKILL."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import httpx

from stack.local import LocalStack, free_ports
from tests.helpers import as_user, eventually, funded_account

SUPERVISOR_PATIENCE = 15.0
"""How long ``stack.stop_process`` (and so ``make run``, the tests and the chaos harness) waits before SIGKILL."""


async def test_deposits_in_flight_at_sigterm_complete_and_the_instance_exits_by_itself(
    stack: LocalStack, api: httpx.AsyncClient, payments_db: asyncpg.Pool, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    (port,) = free_ports(1)
    # One connection: the first deposit holds it, the second waits for it and only gets it after the stop began.
    instance = stack.spawn_service("payments", port=port, env={"PAYMENTS_DB_POOL_SIZE": "1"})
    try:
        stack.wait_healthy()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            async with payments_db.acquire() as blocker, blocker.transaction():
                await blocker.execute("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", user_id)
                deposits = [
                    asyncio.create_task(
                        client.post("/accounts/deposit", json={"amount": "5.00"}, headers=as_user(user_id))
                    )
                    for _ in range(2)
                ]
                await eventually(lambda: waiting_on_a_lock(payments_db))
                instance.popen.send_signal(signal.SIGTERM)
                # The lock is let go only once the stop is under way: the instance has closed its listening
                # socket, which it does after stopping its messaging and before it waits for its requests.
                await eventually(lambda: refuses_connections(port), timeout=SUPERVISOR_PATIENCE)
            responses = await asyncio.gather(*deposits)

        assert [response.status_code for response in responses] == [200, 200]
        assert sorted(response.json()["balance"] for response in responses) == ["15.00", "20.00"]
        assert await asyncio.to_thread(instance.popen.wait, SUPERVISOR_PATIENCE) == 0
    finally:
        stack.stop_process(instance)


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))
