"""The Operations pages at scale: what they ask the gateway for (``GET /ops/orders``, ``/ops/payments``,
``/ops/dead-letters?limit=50``, ``/ops/audit``), timed with the operator's token on the (nearly) empty databases,
then again once ``bench.preload`` wrote a week of settled traffic into them (``Plan.ops_orders``, 10 M).

Each endpoint gets ``ops_warmup_requests`` untimed requests, then up to ``ops_requests`` sequential ones, one at a
time on one keep-alive connection, within ``ops_seconds``: an endpoint that takes seconds a request is timed over
fewer requests rather than holding the bench for half an hour.

The phase runs once per bench run, after everything else: the preload leaves the databases big for any phase that
came after it, and they are nearly empty only once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.http import Client
from bench.load import summary_ms
from bench.preload import Preload, Shape

if TYPE_CHECKING:
    from bench.phases import Bench

ENDPOINTS = {
    "orders": "/ops/orders",
    "payments": "/ops/payments",
    "dead_letters": "/ops/dead-letters?limit=50",
    "audit": "/ops/audit",
}
"""What the Operations, Dead letters and audit views fetch on every refresh, by the name the figures use."""
GOAL_P99_MS = 20.0
GOAL_RATIO = 1.5
GOAL_ORDERS = 10_000_000
"""The goal the phase is judged against: at this many orders, every endpoint's p99 at most GOAL_P99_MS and
GOAL_RATIO times its p99 on the empty databases. It is judged only on a preload this big
(``bench.report.ops_goals``)."""


class OpsAtScale:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        token = bench.stack.env().get("GOZON_OPERATOR_TOKEN")
        if not token:
            raise RuntimeError("the services run without GOZON_OPERATOR_TOKEN: no request of this phase could pass")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def measure(self) -> dict[str, Any]:
        orders_before = await self.bench.observer.orders.fetchval("SELECT count(*) FROM orders")
        empty = await self._time_endpoints("empty")
        preload = await self._preload()
        loaded = await self._time_endpoints("preloaded")
        return {"orders_before": orders_before, "preload": preload, "empty": empty, "loaded": loaded}

    async def _preload(self) -> dict[str, Any]:
        shape = Shape.of(self.plan.ops_orders, self.plan.ops_orders_per_user, datetime.now(UTC))
        preload = Preload(self.bench.stack.database_urls, self.bench.observer.admin, shape)
        label = f"preloading {shape.orders:,} orders"
        async with self.bench.progress.phase(label, status=lambda: f"{preload.orders_done:,} orders written"):
            return await preload.run()

    async def _time_endpoints(self, label: str) -> dict[str, dict[str, Any]]:
        client = Client(self.bench.stack.gateway_url, 1)
        try:
            return {name: await self._timed(client, path, label) for name, path in ENDPOINTS.items()}
        finally:
            client.close()

    async def _timed(self, client: Client, path: str, label: str) -> dict[str, Any]:
        """Latency percentiles of the requests answered 200; any other answer is counted as an error."""
        latencies: list[float] = []
        errors = 0
        progress = self.bench.progress.phase(
            f"{path.split('?')[0]}, {label}",
            self.plan.ops_seconds,
            lambda: f"{len(latencies)} timed, {errors} errors",
        )
        async with progress:
            for _ in range(self.plan.ops_warmup_requests):
                await client.request("GET", path, self.headers)
            deadline = time.monotonic() + self.plan.ops_seconds
            while len(latencies) + errors < self.plan.ops_requests and time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.request("GET", path, self.headers)
                if response.status == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1
        return {"path": path, "requests": len(latencies) + errors, "errors": errors, "ms": summary_ms(latencies)}
