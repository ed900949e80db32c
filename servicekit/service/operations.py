"""The operator's routes on each consuming service: its dead letters (list, replay, discard), the audit log of
what operators did to them, and what the service remembers of one order's journey. The gateway alone lets
operators reach them, and tells who acted (``X-Gozon-Operator``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from messaging.console import DeadLetterConsole, Filters
from messaging.letter_rules import MAX_TYPE_LENGTH, STATES
from messaging.journey import Step
from messaging.runtime import Messaging
from servicekit import params
from servicekit.problems import NotFound, Problem, Unprocessable
from servicekit.requests import json_body

OPERATOR_HEADER = "X-Gozon-Operator"
MAX_REASON_LENGTH = 500

bp = Blueprint("operations")
Journey = Callable[[uuid.UUID], Awaitable[list[Step] | None]]


class KafkaUnavailable(Problem):
    status_code, message = 503, "Service Unavailable"


def filters_of(request: Request) -> Filters:
    kind, q = params.single(request.args, "type"), params.single(request.args, "q")
    if kind is not None and (len(kind) > MAX_TYPE_LENGTH or not kind.isprintable()):
        raise Unprocessable(f"'type' must be at most {MAX_TYPE_LENGTH} printable characters.")
    if q is not None and (len(q) > 36 or not q.isprintable()):
        raise Unprocessable("'q' must be a message id or an order id.")
    return Filters(params.one_of(request.args, "state", STATES), kind, q)


def page_of(request: Request) -> tuple[int, int]:
    return (
        params.integer(request.args, "limit", params.OPS_DEFAULT_PAGE, 1, params.OPS_MAX_OFFSET + params.OPS_MAX_PAGE),
        params.integer(request.args, "offset", 0, 0, params.OPS_MAX_OFFSET),
    )


def action_of(request: Request) -> tuple[str, str]:
    """Who acts (as the gateway vouches) and why (required)."""
    reason = json_body(request).get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH or not _storable(reason):
        raise Unprocessable(f"'reason' is required: a text of 1 to {MAX_REASON_LENGTH} characters.")
    return request.headers.get(OPERATOR_HEADER) or "operator", reason.strip()


def _storable(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor an unpaired surrogate."""
    return "\x00" not in text and text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") == text


def _console(request: Request) -> DeadLetterConsole:
    return request.app.ctx.messaging.console


def _producer(request: Request) -> Any:
    messaging: Messaging = request.app.ctx.messaging
    if messaging.producer is None:
        raise KafkaUnavailable("Kafka is not reachable yet; nothing can be replayed. Retry shortly.")
    return messaging.producer


@bp.get("/ops/dead-letters")
async def list_dead_letters(request: Request) -> HTTPResponse:
    limit, offset = page_of(request)
    items, total = await _console(request).find(filters_of(request), limit, offset)
    return json({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.post("/ops/dead-letters/replay")
async def replay_matching(request: Request) -> HTTPResponse:
    operator, reason = action_of(request)
    outcomes, matched = await _console(request).replay_matching(
        filters_of(request), _producer(request), operator, reason
    )
    return json({"results": [outcome.as_dict() for outcome in outcomes], "matched": matched})


@bp.post("/ops/dead-letters/<letter_id:str>/replay")
async def replay_one(request: Request, letter_id: str) -> HTTPResponse:
    operator, reason = action_of(request)
    outcome = await _console(request).replay_one(letter_id, _producer(request), operator, reason)
    if outcome.outcome == "not_found":
        raise NotFound(outcome.detail)
    return json({"results": [outcome.as_dict()]})


@bp.post("/ops/dead-letters/<letter_id:str>/discard")
async def discard(request: Request, letter_id: str) -> HTTPResponse:
    operator, reason = action_of(request)
    outcome = await _console(request).discard(letter_id, operator, reason)
    if outcome.outcome == "not_found":
        raise NotFound(outcome.detail)
    return json({"results": [outcome.as_dict()]})


@bp.get("/ops/audit")
async def audit(request: Request) -> HTTPResponse:
    limit, offset = page_of(request)
    items, total = await _console(request).actions(limit, offset)
    return json({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.get("/ops/journey/<order_id:str>")
async def journey(request: Request, order_id: str) -> HTTPResponse:
    """What this service's tables remember of the order; 404 when they remember nothing."""
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        raise NotFound("No such order.") from None
    steps = await request.app.ctx.journey(parsed)
    if steps is None:
        raise NotFound("This service knows nothing of that order.")
    return json({"steps": [step.as_dict() for step in steps]})
