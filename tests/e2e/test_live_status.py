"""Live order status over WebSocket through the gateway, including across Orders instances."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from stack import kafka
from stack.local import LocalStack, free_ports
from tests.helpers import as_user, eventually, funded_account, settled


def ws_url(base: str, **query: str) -> str:
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return base.replace("http", "ws", 1) + "/ws/orders" + (f"?{params}" if params else "")


async def receive(socket: ClientConnection, timeout: float = 20) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def next_change(socket: ClientConnection) -> dict:
    """The next status change, skipping snapshots (sent again after a reconnect of the listener)."""
    while (message := await receive(socket))["type"] == "snapshot":
        pass
    assert message["type"] == "order.status_changed"
    return message["order"]


async def close_code(socket: ClientConnection) -> int | None:
    """How the server closed the socket. Snapshots may come first: an instance whose LISTEN connection has just
    (re)connected sends every socket a fresh one."""
    while True:
        try:
            message = await receive(socket)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        assert message["type"] == "snapshot"


@pytest.fixture
async def live(stack: LocalStack, user_id: str) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(ws_url(stack.gateway_url), additional_headers=as_user(user_id)) as socket:
        yield socket


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [({}, {}, 401), ({"X-User-Id": "bad id"}, {}, 400), ({}, {"user_id": "no%20spaces"}, 400)],
)
async def test_identity_is_checked_before_the_upgrade(
    stack: LocalStack, headers: dict, query: dict, status: int
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(stack.gateway_url, **query), additional_headers=headers)
    assert refused.value.response.status_code == status
    assert refused.value.response.headers["content-type"] == "application/problem+json"


async def test_snapshot_then_paid_and_failed_arrive_without_polling(
    api: httpx.AsyncClient, stack: LocalStack, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    pending = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, pending["id"])

    async with websockets.connect(ws_url(stack.gateway_url, user_id=user_id)) as socket:
        snapshot = await receive(socket)
        paid = (await api.post("/orders", json={"amount": "4.00"}, headers=as_user(user_id))).json()
        first = await next_change(socket)
        failed = (await api.post("/orders", json={"amount": "50.00"}, headers=as_user(user_id))).json()
        second = await next_change(socket)

    assert snapshot == {"type": "snapshot", "orders": []}
    assert (first["id"], first["status"], first["amount"]) == (paid["id"], "PAID", "4.00")
    assert (second["id"], second["status"], second["failure_reason"]) == (failed["id"], "FAILED", "INSUFFICIENT_FUNDS")
    assert second == (await api.get(f"/orders/{failed['id']}", headers=as_user(user_id))).json()


async def test_another_user_receives_nothing_of_it(api: httpx.AsyncClient, stack: LocalStack, user_id: str) -> None:
    other = f"{user_id}-b"
    await funded_account(api, user_id, "10.00")
    async with websockets.connect(ws_url(stack.gateway_url), additional_headers=as_user(other)) as theirs:
        await receive(theirs)
        mine = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
        await settled(api, user_id, mine["id"])
        own = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(other))).json()

        assert (await next_change(theirs))["id"] == own["id"]


async def test_order_id_of_a_settled_order_gives_its_final_status_at_once(
    api: httpx.AsyncClient, stack: LocalStack, user_id: str
) -> None:
    order = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
    final = await settled(api, user_id, order["id"])

    url = ws_url(stack.gateway_url, order_id=order["id"])
    async with websockets.connect(url, additional_headers=as_user(user_id)) as socket:
        snapshot = await receive(socket)

    assert snapshot == {"type": "snapshot", "orders": [final]}


@pytest.mark.parametrize("whose", ["another user's", "unknown", "malformed"])
async def test_order_id_that_is_not_yours_is_404_before_the_upgrade(
    api: httpx.AsyncClient, stack: LocalStack, user_id: str, whose: str
) -> None:
    theirs = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(f"{user_id}-b"))).json()["id"]
    order_id = {"another user's": theirs, "unknown": str(uuid.uuid4()), "malformed": "nope"}[whose]
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(stack.gateway_url, order_id=order_id), additional_headers=as_user(user_id))
    assert refused.value.response.status_code == 404


async def test_sockets_per_user_are_capped_with_a_clear_reason(stack: LocalStack, user_id: str) -> None:
    sockets = [await websockets.connect(ws_url(stack.gateway_url, user_id=user_id)) for _ in range(5)]
    try:
        async with websockets.connect(ws_url(stack.gateway_url, user_id=user_id)) as extra:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await receive(extra)
        assert closed.value.rcvd.code == 1008
        assert "sockets per user" in closed.value.rcvd.reason
    finally:
        for socket in sockets:
            await socket.close()


@pytest.fixture
async def listening_instance(stack: LocalStack) -> AsyncIterator[tuple[str, int]]:
    """An Orders instance that holds sockets but consumes nothing (its results topic has no messages), behind a
    gateway of its own: every push it makes was applied by another instance and heard through LISTEN/NOTIFY."""
    orders_port, gateway_port = free_ports(2)
    quiet_topic = f"unused-{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(stack.broker.bootstrap_servers, [quiet_topic], 1)
    orders = stack.spawn_service("orders", port=orders_port, env={"PAYMENT_RESULTS_TOPIC": quiet_topic})
    gateway = stack.spawn_service("gateway", port=gateway_port, env={"ORDERS_URL": f"http://127.0.0.1:{orders_port}"})
    stack.wait_healthy()
    yield f"http://127.0.0.1:{gateway_port}", orders.popen.pid
    for process in (gateway, orders):
        stack.stop_process(process)


async def test_a_push_crosses_instances_and_survives_a_killed_listen_connection(
    api: httpx.AsyncClient,
    orders_db: asyncpg.Pool,
    listening_instance: tuple[str, int],
    user_id: str,
    infra: LocalStack,
) -> None:
    gateway_b, orders_b_pid = listening_instance
    await funded_account(api, user_id, "10.00")
    async with websockets.connect(ws_url(gateway_b, user_id=user_id)) as socket:
        await receive(socket)
        first = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
        assert (await next_change(socket))["id"] == first["id"]

        admin = await asyncpg.connect(infra.postgres.admin_dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"listen-{orders_b_pid}",
            )
        finally:
            await admin.close()
        assert killed == 1
        assert (await receive(socket))["type"] == "snapshot"
        second = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
        assert (await next_change(socket))["id"] == second["id"]


async def test_sockets_are_closed_going_away_when_an_instance_or_the_gateway_stops(
    stack: LocalStack, listening_instance: tuple[str, int], user_id: str
) -> None:
    gateway_b, orders_b_pid = listening_instance
    orders_b = next(p for p in stack.processes if p.popen.pid == orders_b_pid)
    gateway_process = next(p for p in stack.processes if p.name == f"gateway:{gateway_b.rsplit(':', 1)[1]}")

    async with websockets.connect(ws_url(gateway_b, user_id=user_id)) as through_instance:
        await receive(through_instance)
        await asyncio.to_thread(stack.stop_process, orders_b)  # the client keeps reading meanwhile
        assert await close_code(through_instance) == 1001

    restarted = stack.spawn_service("orders", port=int(orders_b.name.rsplit(":", 1)[1]))
    try:
        stack.wait_healthy()
        socket = await websockets.connect(ws_url(gateway_b, user_id=user_id))
        await receive(socket)
        await asyncio.to_thread(stack.stop_process, gateway_process)
        assert await close_code(socket) == 1001
    finally:
        stack.stop_process(restarted)


async def test_reconnecting_gives_a_fresh_snapshot(api: httpx.AsyncClient, stack: LocalStack, user_id: str) -> None:
    pending = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()

    async def snapshot() -> list[dict]:
        async with websockets.connect(ws_url(stack.gateway_url, user_id=user_id)) as socket:
            return (await receive(socket))["orders"]

    first = await snapshot()
    await settled(api, user_id, pending["id"])
    assert [o["id"] for o in first] in ([pending["id"]], [])
    assert await eventually(lambda: _empty(snapshot()))


async def _empty(orders: asyncio.Future) -> bool:
    return await orders == []
