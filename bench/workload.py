"""What the load sends: orders created through the gateway and read back, and the bookkeeping of what was created."""

from __future__ import annotations

import json
import uuid

from bench.http import Client
from bench.load import Rejected, Send

ORDER_BODY = json.dumps({"amount": "1.00", "description": "bench"}).encode()
DEPOSIT_BODY = json.dumps({"amount": "1000000.00"}).encode()
JSON = {"Content-Type": "application/json"}

Created = list[tuple[str, uuid.UUID]]


def ids_of(created: Created) -> list[uuid.UUID]:
    return [order_id for _, order_id in created]


def order_sender(client: Client, users: list[str], created: Created) -> Send:
    """POST /orders for user ``index mod len(users)``; each created order's (user, id) lands in ``created``.
    Any answer but 201 is a ``Rejected``."""

    async def send(index: int) -> bool:
        user = users[index % len(users)]
        response = await client.request("POST", "/orders", {"X-User-Id": user, **JSON}, ORDER_BODY)
        if response.status != 201:
            raise Rejected(response.status)
        created.append((user, uuid.UUID(json.loads(response.body)["id"])))
        return True

    return send


def order_reader(client: Client, orders: Created) -> Send:
    async def send(index: int) -> bool:
        user, order_id = orders[index % len(orders)]
        response = await client.request("GET", f"/orders/{order_id}", {"X-User-Id": user})
        if response.status != 200:
            raise Rejected(response.status)
        return True

    return send


def per_unit_ms(cpu: dict[str, float], units_per_s: float) -> dict[str, float | None]:
    """CPU milliseconds each process group spent per order (or request): robust to a busy machine, where
    throughput and latency are not."""
    return {group: round(cores * 1000 / units_per_s, 3) if units_per_s else None for group, cores in cpu.items()}
