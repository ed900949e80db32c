"""The live-status hub of one Orders instance, with sockets that read and one that never does."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from orders.domain import OrderStatus
from orders.live import LiveHub
from orders.models import Order
from orders.settings import LiveLimits
from tests.helpers import eventually


class FakeSocket:
    """Stands in for a client socket; one that does not read blocks in ``send`` like a full TCP buffer."""

    def __init__(self, reads: bool = True) -> None:
        self.reads = reads
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self._gone = asyncio.Event()

    async def send(self, message: str) -> None:
        if not self.reads:
            await asyncio.Event().wait()
        self.sent.append(json.loads(message))

    def fail_connection(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self._gone.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.fail_connection(code, reason)

    def __aiter__(self) -> FakeSocket:
        return self

    async def __anext__(self) -> str:
        await self._gone.wait()
        raise StopAsyncIteration


async def paid_order(user: str) -> Order:
    now = datetime.now(UTC)
    return await Order.create(
        id=uuid.uuid4(), user_id=user, amount=Decimal("1.00"), status=OrderStatus.PAID, created_at=now, updated_at=now
    )


async def test_a_client_that_never_reads_is_cut_off_and_the_others_get_every_push(orders_orm: None) -> None:
    hub = LiveHub(LiveLimits(queue_size=8))
    user = f"u-{uuid.uuid4().hex[:8]}"
    order = await paid_order(user)
    slow, fast = FakeSocket(reads=False), FakeSocket()
    serving = [asyncio.create_task(hub.serve(ws, user, None)) for ws in (slow, fast)]
    await eventually(lambda: _async(len(fast.sent) == 1))

    for pushed in range(1, 21):
        hub.on_status_changed(json.dumps({"order_id": str(order.id), "user_id": user}))
        await eventually(lambda n=pushed: _async(len(fast.sent) == 1 + n))

    assert slow.closed is not None
    assert slow.closed[0] == 1008
    assert {m["type"] for m in fast.sent[1:]} == {"order.status_changed"}
    fast.fail_connection(1000, "")
    await asyncio.gather(*serving)
    assert hub.sockets == 0


async def test_sockets_per_instance_are_capped(orders_orm: None) -> None:
    hub = LiveHub(LiveLimits(sockets_per_instance=2))
    sockets = [FakeSocket() for _ in range(3)]
    serving = [asyncio.create_task(hub.serve(ws, f"user-{i}", None)) for i, ws in enumerate(sockets)]
    await eventually(lambda: _async(sockets[2].closed is not None))

    assert sockets[2].closed[0] == 1013
    assert hub.sockets == 2
    for ws in sockets[:2]:
        ws.fail_connection(1000, "")
    await asyncio.gather(*serving)


async def _async(value: bool) -> bool:
    return value
