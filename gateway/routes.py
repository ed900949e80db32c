"""The routes the gateway proxies; anything else is a 404 here, never forwarded (no open proxy)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from gateway.upstreams import FORWARDED_REQUEST_HEADERS, FORWARDED_RESPONSE_HEADERS, Upstream
from servicekit.requests import REQUEST_ID_HEADER

bp = Blueprint("proxy")

ACCOUNTS = ("/accounts", ["POST"]), ("/accounts/balance", ["GET"]), ("/accounts/deposit", ["POST"])
ORDERS = ("/orders", ["GET", "POST"]), ("/orders/<order_id:str>", ["GET"])


async def proxy_to(request: Request, upstream: Upstream, path: str) -> HTTPResponse:
    # Sanic decoded the caller's bytes with surrogateescape; re-read them as Latin-1 so any byte survives the
    # trip and the service, not the gateway's client, judges a malformed value.
    headers = {
        name: value.encode(errors="surrogateescape").decode("latin-1")
        for name in FORWARDED_REQUEST_HEADERS
        if (value := request.headers.get(name))
    }
    headers[REQUEST_ID_HEADER] = request.ctx.request_id
    response = await upstream.forward(
        request.app.ctx.http, request.method, path, request.query_string, headers, request.body
    )
    forwarded = {name: value for name in FORWARDED_RESPONSE_HEADERS if (value := response.headers.get(name))}
    return raw(
        response.body,
        status=response.status,
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


@bp.get("/health")
async def health(_request: Request) -> HTTPResponse:
    return json({"status": "ok", "service": "gateway"})


@bp.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    """Ready when every upstream service answers its own /ready."""
    checks = {}
    for name, upstream in request.app.ctx.upstreams.items():
        try:
            response = await upstream.forward(request.app.ctx.http, "GET", "/ready", "", {}, b"")
            checks[name] = response.status == 200
        except Exception:
            checks[name] = False
    ok = all(checks.values())
    return json(
        {"status": "ready" if ok else "unavailable", "service": "gateway", "checks": checks}, status=200 if ok else 503
    )
