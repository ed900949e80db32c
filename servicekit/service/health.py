"""``GET /health`` (the process answers), ``GET /ready`` (its database and Kafka are usable) and ``GET /ops``
(operational figures for the Operations page)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from tortoise import connections

from messaging.runtime import Messaging

Summary = Callable[[], Awaitable[dict[str, Any]]]


def blueprint(service: str, summary: Summary) -> Blueprint:
    bp = Blueprint(f"{service}_operations")

    @bp.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok", "service": service})

    @bp.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        """Ready when the database answers, Kafka's clients are up and no background loop is down (``down`` names
        the ones that are, and why): an instance that takes orders nothing would publish must not look ready."""
        messaging: Messaging = request.app.ctx.messaging
        down = messaging.supervisor.down()
        checks = {
            "database": await _safely(_database_ok()),
            "kafka": messaging.producer is not None,
            "background_tasks": not down,
        }
        ok = all(checks.values())
        return json(
            {"status": "ready" if ok else "unavailable", "service": service, "checks": checks, "down": down},
            status=200 if ok else 503,
        )

    @bp.get("/ops")
    async def ops(request: Request) -> HTTPResponse:
        figures, messaging = await summary(), await request.app.ctx.messaging.state()
        estimates = figures.pop("estimates", []) + messaging.pop("estimates")
        return json({"service": service, **figures, **messaging, "estimates": estimates})

    return bp


async def _database_ok() -> bool:
    await connections.get("default").execute_query("SELECT 1")
    return True


async def _safely(check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, 2.0)
    except Exception:
        return False
