"""Live order status over WebSocket: ``GET /ws/orders``.

The instance that applies a payment result is usually not the one holding the owner's socket. The status update
NOTIFYs ``order_status`` in its transaction; every instance hears it on its one LISTEN connection (shared with the
outbox relay), reads the order once, and pushes it to the sockets it holds for that user. A NOTIFY is delivered
only on commit, so a pushed status is always a committed one. After the LISTEN connection comes back from a drop,
every socket gets a fresh snapshot, so a change made while the instance was deaf is not lost.

Each socket has a bounded send queue: a client that does not read is cut off (1008) instead of growing memory or
delaying the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sanic import Blueprint, Request
from sanic.server.websockets.impl import WebsocketImplProtocol

from orders.domain import OrderStatus
from orders.models import Order
from orders.settings import LiveLimits
from orders.views import order_view
from servicekit.problems import NotFound

log = logging.getLogger("orders.live")

GOING_AWAY, POLICY_VIOLATION, TRY_AGAIN_LATER = 1001, 1008, 1013

bp = Blueprint("live")


@dataclass(eq=False)
class Subscriber:
    ws: WebsocketImplProtocol
    user_id: str
    order_id: uuid.UUID | None
    queue: asyncio.Queue[str]
    held_back: list[str] | None = field(default_factory=list)

    def wants(self, order: Order) -> bool:
        return self.order_id is None or self.order_id == order.id

    def offer(self, message: str) -> bool:
        """Queue a message; False when the client has stopped reading and its queue is full."""
        if self.held_back is not None:
            self.held_back.append(message)
            return True
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True


class LiveHub:
    def __init__(self, limits: LiveLimits) -> None:
        self._limits = limits
        self._by_user: dict[str, set[Subscriber]] = defaultdict(set)
        self._count = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> int:
        return self._count

    async def serve(self, ws: WebsocketImplProtocol, user_id: str, order_id: uuid.UUID | None) -> None:
        """Hold one client socket until it closes: a snapshot first, then every status change."""
        if refusal := self._refusal(user_id):
            await ws.close(*refusal)
            return
        subscriber = Subscriber(ws, user_id, order_id, asyncio.Queue(self._limits.queue_size))
        self._by_user[user_id].add(subscriber)
        self._count += 1
        sender = asyncio.create_task(self._send_queued(subscriber))
        try:
            await self._snapshot(subscriber)
            await self._drain_incoming(ws)
        finally:
            sender.cancel()
            self._by_user[user_id].discard(subscriber)
            if not self._by_user[user_id]:
                del self._by_user[user_id]
            self._count -= 1

    def _refusal(self, user_id: str) -> tuple[int, str] | None:
        if self._count >= self._limits.sockets_per_instance:
            return TRY_AGAIN_LATER, "too many sockets on this instance; reconnect later"
        if len(self._by_user.get(user_id, ())) >= self._limits.sockets_per_user:
            return POLICY_VIOLATION, f"at most {self._limits.sockets_per_user} sockets per user"
        return None

    async def _snapshot(self, subscriber: Subscriber) -> None:
        """Changes that arrive while the snapshot is read are held back and queued after it, so the snapshot
        is always the first message and nothing is missed."""
        if subscriber.order_id:
            orders = await Order.filter(id=subscriber.order_id, user_id=subscriber.user_id)
        else:
            orders = await Order.filter(user_id=subscriber.user_id, status=OrderStatus.PENDING).order_by("-created_at")
        held_back, subscriber.held_back = subscriber.held_back or [], None
        for message in [encode("snapshot", orders=[order_view(order) for order in orders]), *held_back]:
            if not subscriber.offer(message):
                self._cut_off(subscriber)
                return

    @staticmethod
    async def _drain_incoming(ws: WebsocketImplProtocol) -> None:
        """Clients have nothing to say; reading keeps ping/pong and the close handshake going."""
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    async def _send_queued(self, subscriber: Subscriber) -> None:
        while True:
            message = await subscriber.queue.get()
            try:
                await subscriber.ws.send(message)
            except Exception:
                return

    def _cut_off(self, subscriber: Subscriber) -> None:
        log.warning("socket of %s is not reading; closing it", subscriber.user_id)
        subscriber.ws.fail_connection(POLICY_VIOLATION, "send queue full: the client is not reading")

    def on_status_changed(self, payload: str) -> None:
        """A NOTIFY on ``order_status``: push the committed order to this instance's sockets of its owner."""
        change = json.loads(payload)
        if change["user_id"] in self._by_user:
            self._spawn(self._push(uuid.UUID(change["order_id"]), change["user_id"]))

    async def _push(self, order_id: uuid.UUID, user_id: str) -> None:
        order = await Order.get_or_none(id=order_id, user_id=user_id)
        if order is None:
            return
        message = encode("order.status_changed", order=order_view(order))
        for subscriber in list(self._by_user.get(user_id, ())):
            if subscriber.wants(order) and not subscriber.offer(message):
                self._cut_off(subscriber)

    async def resnapshot(self) -> None:
        """After the LISTEN connection was re-established: changes may have been missed, so start over."""
        for subscribers in list(self._by_user.values()):
            for subscriber in list(subscribers):
                await self._snapshot(subscriber)

    async def close_all(self) -> None:
        """On shutdown: tell every client this instance is going away (1001), so it reconnects elsewhere."""
        for subscribers in list(self._by_user.values()):
            for subscriber in list(subscribers):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(subscriber.ws.close(GOING_AWAY, "server shutting down"), 1)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def encode(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def requested_order(request: Request) -> uuid.UUID | None:
    """``?order_id=``: an unknown, malformed or someone else's id is a 404, like GET /orders/{id}."""
    raw = request.args.get("order_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("Order not found.") from None


@bp.on_request
async def check_before_upgrade(request: Request) -> None:
    """Runs before the handshake, so a refusal is a plain problem+json response, not a closed socket."""
    order_id = requested_order(request)
    if order_id and not await Order.exists(id=order_id, user_id=request.ctx.user_id):
        raise NotFound("Order not found.")
    request.ctx.live_order_id = order_id


@bp.websocket("/ws/orders")
async def live_orders(request: Request, ws: WebsocketImplProtocol) -> None:
    await request.app.ctx.live.serve(ws, request.ctx.user_id, request.ctx.live_order_id)
