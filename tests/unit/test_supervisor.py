"""A background loop that dies of an unexpected error is restarted, counted, and reported as down meanwhile."""

import asyncio
import logging

import pytest

from messaging.supervisor import FINISHED, RESTARTING, RUNNING, Supervisor


async def test_a_dying_loop_is_restarted_and_reported_down_until_it_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor("scratch", initial_backoff=0.2, max_backoff=0.2)
    failures_left, down_seen = 2, []
    running = asyncio.Event()

    async def loop() -> None:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise RuntimeError("boom")
        running.set()
        await asyncio.Event().wait()

    async def watch() -> None:
        while True:
            down_seen.append(supervisor.down())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    with caplog.at_level(logging.ERROR, "messaging.supervisor"):
        supervisor.start("relay", loop)
        await asyncio.wait_for(running.wait(), 5)
    watcher.cancel()

    assert supervisor.restarts() == {"relay": 2}
    assert supervisor.states["relay"].state == RUNNING
    assert supervisor.down() == {}
    # While it waited to start again, it was down, with the error that killed it.
    assert {"relay": "restarting after RuntimeError: boom"} in down_seen
    # Each death is one log record, with its stack trace.
    deaths = [record for record in caplog.records if "died" in record.getMessage()]
    assert len(deaths) == 2
    assert all(record.exc_info for record in deaths)
    await supervisor.stop()


async def test_a_loop_that_returns_is_finished_not_restarted() -> None:
    supervisor = Supervisor("scratch", initial_backoff=0.01)

    async def once() -> None:
        return None

    supervisor.start("kafka-clients", once)
    await asyncio.sleep(0.05)

    assert supervisor.states["kafka-clients"].state == FINISHED
    assert supervisor.restarts() == {"kafka-clients": 0}
    assert RESTARTING not in {state.state for state in supervisor.states.values()}
    await supervisor.stop()
