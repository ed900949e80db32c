"""The operators' routes: each service's figures, and the dead letters and audit log of both services as one.

A letter's id names its service (``orders-12``), so an action on one letter goes to that service alone; a list,
a bulk replay or the audit log asks each service (or the one ``service=`` names) and puts the answers together,
newest first. Only an operator gets here (``gateway.operators``); the services learn who acted from
``X-Gozon-Operator``, never from ``X-User-Id``, which is not forwarded."""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import quote, urlencode

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from gateway.operators import OPERATOR_HEADER
from gateway.upstreams import Upstream, UpstreamResponse
from servicekit import params
from servicekit.problems import NotFound
from servicekit.requests import REQUEST_ID_HEADER

bp = Blueprint("operations")


async def _ask(
    request: Request, upstream: Upstream, path: str, query: dict[str, str] | None = None
) -> UpstreamResponse:
    headers = {OPERATOR_HEADER: request.ctx.operator, REQUEST_ID_HEADER: request.ctx.request_id}
    if content_type := request.headers.get("content-type"):
        headers["content-type"] = content_type
    query_string = urlencode(query) if query is not None else request.query_string
    return await upstream.forward(request.app.ctx.http, request.method, path, query_string, headers, request.body)


def _passed_on(response: UpstreamResponse) -> HTTPResponse:
    return raw(response.body, status=response.status, content_type=response.headers.get("content-type"))


def _upstreams(request: Request) -> dict[str, Upstream]:
    upstreams: dict[str, Upstream] = request.app.ctx.upstreams
    service = params.one_of(request.args, "service", tuple(upstreams))
    return {service: upstreams[service]} if service else upstreams


def _letter_service(request: Request, letter_id: str) -> Upstream:
    service, _, number = letter_id.rpartition("-")
    upstream = request.app.ctx.upstreams.get(service)
    if upstream is None or not (number.isascii() and number.isdigit()):
        raise NotFound(f"No dead letter {letter_id!r}.")
    return upstream


async def _merged_page(request: Request, path: str, newest: tuple[str, ...]) -> HTTPResponse:
    """Each service's first ``offset + limit`` items, merged newest first and cut to the page asked for."""
    limit = params.integer(request.args, "limit", params.OPS_DEFAULT_PAGE, 1, params.OPS_MAX_PAGE)
    offset = params.integer(request.args, "offset", 0, 0, params.OPS_MAX_OFFSET)
    filters = {name: value for name, value in request.args.items() if name not in ("limit", "offset", "service")}
    items: list[dict[str, Any]] = []
    total = 0
    for upstream in _upstreams(request).values():
        query = {name: values[0] for name, values in filters.items()} | {"limit": str(offset + limit), "offset": "0"}
        response = await _ask(request, upstream, path, query)
        if response.status != 200:
            return _passed_on(response)
        page = jsonlib.loads(response.body)
        items += page["items"]
        total += page["total"]
    items.sort(key=lambda item: tuple(item[field] for field in newest), reverse=True)
    return json({"items": items[offset : offset + limit], "total": total, "limit": limit, "offset": offset})


@bp.get("/ops/dead-letters")
async def list_dead_letters(request: Request) -> HTTPResponse:
    return await _merged_page(request, "/ops/dead-letters", ("last_failed_at", "id"))


@bp.post("/ops/dead-letters/replay")
async def replay_matching(request: Request) -> HTTPResponse:
    results: list[dict[str, Any]] = []
    matched = 0
    for upstream in _upstreams(request).values():
        response = await _ask(request, upstream, "/ops/dead-letters/replay")
        if response.status != 200:
            return _passed_on(response)
        answer = jsonlib.loads(response.body)
        results += answer["results"]
        matched += answer["matched"]
    return json({"results": results, "matched": matched})


@bp.post("/ops/dead-letters/<letter_id:str>/replay")
async def replay_one(request: Request, letter_id: str) -> HTTPResponse:
    upstream = _letter_service(request, letter_id)
    return _passed_on(await _ask(request, upstream, f"/ops/dead-letters/{letter_id}/replay"))


@bp.post("/ops/dead-letters/<letter_id:str>/discard")
async def discard(request: Request, letter_id: str) -> HTTPResponse:
    upstream = _letter_service(request, letter_id)
    return _passed_on(await _ask(request, upstream, f"/ops/dead-letters/{letter_id}/discard"))


@bp.get("/ops/audit")
async def audit(request: Request) -> HTTPResponse:
    return await _merged_page(request, "/ops/audit", ("at", "id"))


@bp.get("/ops/orders/<order_id:str>/journey")
async def journey(request: Request, order_id: str) -> HTTPResponse:
    """The order's steps as both services remember them, in time order."""
    steps: list[dict[str, Any]] = []
    for upstream in request.app.ctx.upstreams.values():
        response = await _ask(request, upstream, f"/ops/journey/{quote(order_id, safe='')}", {})
        if response.status == 200:
            steps += jsonlib.loads(response.body)["steps"]
        elif response.status != 404:
            return _passed_on(response)
    if not steps:
        raise NotFound("Neither service knows this order.")
    steps.sort(key=lambda step: step["at"])
    return json({"order_id": order_id, "steps": steps})


@bp.get("/ops/<service:str>")
async def operations(request: Request, service: str) -> HTTPResponse:
    """Each service's operational figures (GET /ops on the service), for the Operations page."""
    if service not in request.app.ctx.upstreams:
        raise NotFound(f"No service named {service!r}.")
    return _passed_on(await _ask(request, request.app.ctx.upstreams[service], "/ops", {}))
