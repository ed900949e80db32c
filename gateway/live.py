"""``GET /ws/orders``: the live order-status socket, proxied to an Orders instance.

Identity and the optional ``?order_id=`` are checked before the upgrade, so a refusal is a problem+json response.
Then the socket is joined to an upstream socket on one Orders instance (round-robin, skipping one that refuses).
When the upstream goes, the client is closed cleanly: with the upstream's own close code when it closed normally
(1001 when an instance shuts down, 1008 when it cut off a client that does not read), 1011 when it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from urllib.parse import urlencode

import websockets
from sanic import Blueprint, Request, Sanic
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.asyncio.client import ClientConnection

from gateway.upstreams import Upstream
from servicekit.problems import NotFound
from servicekit.requests import REQUEST_ID_HEADER, USER_ID_HEADER

log = logging.getLogger("gateway.live")

GOING_AWAY, POLICY_VIOLATION, INTERNAL_ERROR = 1001, 1008, 1011
PASSED_THROUGH = {1000, GOING_AWAY, POLICY_VIOLATION, 1013}

bp = Blueprint("live")


@bp.on_request
async def check_order_before_upgrade(request: Request) -> None:
    """Another user's, an unknown or a malformed order id is a 404 now, never a socket that shows nothing."""
    if (order_id := request.args.get("order_id")) is not None:
        if not _is_uuid(order_id):
            raise NotFound("Order not found.")
        upstream: Upstream = request.app.ctx.upstreams["orders"]
        headers = {USER_ID_HEADER: request.ctx.user_id, REQUEST_ID_HEADER: request.ctx.request_id}
        response = await upstream.forward(request.app.ctx.http, "GET", f"/orders/{order_id}", "", headers, b"")
        if response.status == 404:
            raise NotFound("Order not found.")


@bp.before_server_start
async def track_sockets(app: Sanic) -> None:
    app.ctx.live_sockets = set()


@bp.before_server_stop
async def close_sockets(app: Sanic) -> None:
    """On shutdown: every client hears 1001 going away, and reconnects to whatever comes back."""
    for ws in list(app.ctx.live_sockets):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(GOING_AWAY, "gateway shutting down"), 1)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@bp.websocket("/ws/orders")
async def live_orders(request: Request, ws: WebsocketImplProtocol) -> None:
    request.app.ctx.live_sockets.add(ws)
    try:
        await _proxy(request, ws)
    finally:
        request.app.ctx.live_sockets.discard(ws)


async def _proxy(request: Request, ws: WebsocketImplProtocol) -> None:
    upstream = await _connect(request)
    if upstream is None:
        await ws.close(INTERNAL_ERROR, "the orders service is unavailable")
        return
    async with upstream:
        to_client = asyncio.create_task(_relay_to_client(upstream, ws, request.app.ctx.settings.ws_send_timeout))
        from_client = asyncio.create_task(_relay_to_upstream(ws, upstream))
        done, _ = await asyncio.wait({to_client, from_client}, return_when=asyncio.FIRST_COMPLETED)
        for task in (to_client, from_client):
            task.cancel()
    if to_client in done and to_client.result():
        code = upstream.close_code if upstream.close_code in PASSED_THROUGH else INTERNAL_ERROR
        await ws.close(code, upstream.close_reason or "")


async def _connect(request: Request) -> ClientConnection | None:
    upstream: Upstream = request.app.ctx.upstreams["orders"]
    headers = {USER_ID_HEADER: request.ctx.user_id, REQUEST_ID_HEADER: request.ctx.request_id}
    query = f"?{urlencode({'order_id': request.args['order_id'][0]})}" if "order_id" in request.args else ""
    for base in upstream.rotation():
        url = "ws" + base.removeprefix("http") + "/ws/orders" + query
        try:
            return await websockets.connect(url, additional_headers=headers, open_timeout=5)
        except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
            log.warning("orders instance %s refused the socket: %s", base, exc)
    return None


async def _relay_to_client(upstream: ClientConnection, ws: WebsocketImplProtocol, send_timeout: float) -> bool:
    """Upstream messages to the client until the upstream closes (True). A client that stops reading would
    stall this forever, so it is cut off instead (False)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in upstream:
            try:
                await asyncio.wait_for(ws.send(message), send_timeout)
            except TimeoutError:
                ws.fail_connection(POLICY_VIOLATION, "the client is not reading")
                return False
    return True


async def _relay_to_upstream(ws: WebsocketImplProtocol, upstream: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for message in ws:
            await upstream.send(message)
