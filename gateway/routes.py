"""The routes the gateway proxies; anything else is a 404 here, never forwarded (no open proxy)."""

from __future__ import annotations

import httpx
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from gateway.upstreams import FORWARDED_REQUEST_HEADERS, FORWARDED_RESPONSE_HEADERS, Upstream
from servicekit.problems import NotFound
from servicekit.requests import REQUEST_ID_HEADER

bp = Blueprint("proxy")

ACCOUNTS = ("/accounts", ["POST"]), ("/accounts/balance", ["GET"]), ("/accounts/deposit", ["POST"])
ORDERS = ("/orders", ["GET", "POST"]), ("/orders/<order_id:str>", ["GET"])


async def proxy_to(request: Request, upstream: Upstream, path: str) -> HTTPResponse:
    # The caller's bytes as they came (Sanic decoded them with surrogateescape): the service judges them.
    headers: dict[str, str | bytes] = {
        name: value.encode(errors="surrogateescape")
        for name in FORWARDED_REQUEST_HEADERS
        if (value := request.headers.get(name))
    }
    headers[REQUEST_ID_HEADER] = request.ctx.request_id
    client: httpx.AsyncClient = request.app.ctx.http
    response = await upstream.forward(client, request.method, path, request.query_string, headers, request.body)
    forwarded = {name: value for name in FORWARDED_RESPONSE_HEADERS if (value := response.headers.get(name))}
    return raw(
        response.content,
        status=response.status_code,
        headers=forwarded,
        content_type=forwarded.pop("content-type", None),
    )


def _register(paths: tuple[tuple[str, list[str]], ...], upstream_name: str) -> None:
    for uri, methods in paths:

        async def handler(request: Request, **_params: str) -> HTTPResponse:
            return await proxy_to(request, request.app.ctx.upstreams[upstream_name], request.path)

        bp.add_route(handler, uri, methods=methods, name=f"{upstream_name}_{uri.strip('/').replace('/', '_')}")


_register(ACCOUNTS, "payments")
_register(ORDERS, "orders")


@bp.get("/ops/<service:str>")
async def operations(request: Request, service: str) -> HTTPResponse:
    """Each service's operational figures (GET /ops on the service), for the Operations page."""
    if service not in request.app.ctx.upstreams:
        raise NotFound(f"No service named {service!r}.")
    return await proxy_to(request, request.app.ctx.upstreams[service], "/ops")


@bp.get("/health")
async def health(_request: Request) -> HTTPResponse:
    return json({"status": "ok", "service": "gateway"})


@bp.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    """Ready when every upstream service answers its own /ready."""
    client: httpx.AsyncClient = request.app.ctx.http
    checks = {}
    for name, upstream in request.app.ctx.upstreams.items():
        try:
            response = await upstream.forward(client, "GET", "/ready", "", {}, b"")
            checks[name] = response.status_code == 200
        except Exception:
            checks[name] = False
    ok = all(checks.values())
    return json(
        {"status": "ready" if ok else "unavailable", "service": "gateway", "checks": checks}, status=200 if ok else 503
    )
