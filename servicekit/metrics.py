"""``GET /metrics`` in Prometheus text, and the HTTP series every Gozon process reports.

Requests are labelled by their route's template (``/orders/<order_id:str>``), never the raw path: one series per
route, however many orders there are. A path no route matches is ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, raw

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "gozon_http_requests_total", "HTTP requests answered.", ["service", "method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "gozon_http_request_duration_seconds",
    "Time from a request's arrival to its response, by route template.",
    ["service", "method", "route"],
)

Refresh = Callable[[], Awaitable[None]]


def install(app: Sanic, service: str) -> None:
    """Time and count every HTTP response of ``app`` (WebSocket streams are not requests answered)."""

    @app.on_request(priority=200)
    async def start_clock(request: Request) -> None:
        request.ctx.started_at = time.perf_counter()

    @app.on_response(priority=200)
    async def count(request: Request, response: HTTPResponse) -> None:
        route = request.uri_template or UNMATCHED
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status)).inc()
        started_at = getattr(request.ctx, "started_at", None)
        if started_at is not None:
            HTTP_DURATION.labels(service, request.method, route).observe(time.perf_counter() - started_at)


def blueprint(refresh: Refresh | None = None) -> Blueprint:
    """``GET /metrics``; ``refresh`` first sets the gauges that cost a query."""
    bp = Blueprint("metrics")

    @bp.get(METRICS_PATH)
    async def metrics(_request: Request) -> HTTPResponse:
        if refresh is not None:
            await refresh()
        return raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

    return bp
