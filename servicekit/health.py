"""``GET /health`` (the process answers), ``GET /ready`` (its database and Kafka are usable) and ``GET /ops``
(operational figures for the Operations page)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json
from tortoise import connections

Summary = Callable[[], Awaitable[dict[str, Any]]]


def blueprint(service: str, summary: Summary) -> Blueprint:
    bp = Blueprint(f"{service}_operations")

    @bp.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok", "service": service})

    @bp.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        checks = {"database": await _safely(_database_ok()), "kafka": _messaging_ok(request.app)}
        ok = all(checks.values())
        return json(
            {"status": "ready" if ok else "unavailable", "service": service, "checks": checks},
            status=200 if ok else 503,
        )

    @bp.get("/ops")
    async def ops(request: Request) -> HTTPResponse:
        return json({"service": service, **await summary(), **await request.app.ctx.messaging.state()})

    return bp


async def _database_ok() -> bool:
    await connections.get("default").execute_query("SELECT 1")
    return True


def _messaging_ok(app: Sanic) -> bool:
    return app.ctx.messaging.running


async def _safely(check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, 2.0)
    except Exception:
        return False
