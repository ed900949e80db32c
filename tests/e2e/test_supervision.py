"""A background loop that dies of a bug is restarted, and while it is down the instance says so on ``/ready``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stack.local import LocalStack, Process, free_ports
from tests.helpers import eventually


@pytest.fixture
def orders_instance(stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[tuple[Process, str]]:
    """One more Orders instance whose outbox relay raises as the test's parameter arms it."""
    (port,) = free_ports(1)
    env = {"GOZON_FAULT_POINTS": f"relay.before_batch={request.param}"}
    instance = stack.spawn_service("orders", port=port, env=env)
    stack.wait_healthy()
    yield instance, f"http://127.0.0.1:{port}"
    stack.stop_process(instance)


@pytest.mark.parametrize("orders_instance", ["raise"], indirect=True)
async def test_an_instance_whose_relay_keeps_dying_is_not_ready_and_says_which_loop(
    orders_instance: tuple[Process, str],
) -> None:
    _, url = orders_instance
    async with httpx.AsyncClient(base_url=url) as client:

        async def unready() -> dict | None:
            response = await client.get("/ready")
            return response.json() if response.status_code == 503 else None

        ready = await eventually(unready)
        assert (await client.get("/health")).status_code == 200

    assert ready["checks"] == {"database": True, "kafka": True, "background_tasks": False}
    assert list(ready["down"]) == ["outbox-relay"]
    assert "InjectedFault" in ready["down"]["outbox-relay"]


@pytest.mark.parametrize("orders_instance", ["raise:3"], indirect=True)
async def test_a_relay_that_died_three_times_is_restarted_logged_each_time_and_ready_again(
    stack: LocalStack, orders_instance: tuple[Process, str]
) -> None:
    instance, url = orders_instance
    async with httpx.AsyncClient(base_url=url) as client:

        async def restarted_and_ready() -> dict | None:
            """The third restart done (not waiting out its backoff), as /ops says, and /ready agreeing after it."""
            tasks = (await client.get("/ops")).json()["background_tasks"]
            relay = tasks.get("outbox-relay", {})
            if (relay.get("restarts"), relay.get("state")) != (3, "running"):
                return None
            return tasks if (await client.get("/ready")).status_code == 200 else None

        tasks = await eventually(restarted_and_ready)

    assert all(task["restarts"] == 0 for name, task in tasks.items() if name != "outbox-relay")
    assert stack.log_dir is not None
    log = (stack.log_dir / f"{instance.name.replace(':', '-')}.log").read_text()
    assert log.count("background task outbox-relay died") == 3
    assert log.count("InjectedFault: fault point relay.before_batch") == 3
