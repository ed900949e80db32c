"""The Orders series at ``GET /metrics``, beside the HTTP and messaging ones."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS_SETTLED = Counter(
    "gozon_orders_settled_total", "Orders settled here, by the status they settled in.", ["status"]
)
ORDER_SETTLE_SECONDS = Histogram(
    "gozon_order_settle_seconds",
    "Time from an order's creation to its settlement.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
ORDERS_OVERDUE = Gauge(
    "gozon_orders_overdue",
    "Orders PENDING for longer than the payment deadline (counted up to a bound: a figure for alerts, not a census).",
)


for _status in ("PAID", "FAILED"):
    ORDERS_SETTLED.labels(_status)


def settled(status: str, seconds: float) -> None:
    ORDERS_SETTLED.labels(status).inc()
    ORDER_SETTLE_SECONDS.observe(seconds)
