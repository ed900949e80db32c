"""Per-request plumbing: the request id, the caller's identity, and the JSON body."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from messaging import values
from servicekit.problems import BadRequest, Unauthorized

USER_ID_HEADER = "X-User-Id"
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("gozon.access")
current_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def user_id_from(value: str | None) -> str:
    """The caller's id, or the 401/400 the API promises for a missing or malformed one."""
    if value is None or value == "":
        raise Unauthorized(f"The {USER_ID_HEADER} header is required.")
    if not values.USER_ID.fullmatch(value):
        raise BadRequest(f"{USER_ID_HEADER} must be {values.USER_ID_RULE}.")
    return value


def claimed_identity(request: Request) -> str | None:
    """The ``X-User-Id`` header; a WebSocket upgrade may use ``?user_id=`` instead, because browsers cannot set
    headers on one."""
    if header := request.headers.get(USER_ID_HEADER):
        return header
    if request.headers.get("upgrade", "").lower() == "websocket":
        return request.args.get("user_id")
    return None


def request_id_from(value: str | None) -> str:
    """Keep the caller's request id when it is sane, otherwise start a new one."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return uuid.uuid4().hex


# No request body of Gozon's nests more than a few levels.
MAX_NESTING = 32
NESTED_TOO_DEEPLY = "The request body is nested too deeply."


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, numbers kept exact as ``Decimal``; malformed JSON is a 400, and so is JSON
    that cannot be held: a number whose exponent no Decimal can take, or nesting deeper than ``MAX_NESTING`` (the
    parser's own limit differs between Python versions, so the bound is ours)."""
    try:
        body = json.loads(request.body or b"", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    except InvalidOperation:
        raise BadRequest("The request body holds a number too large or too small to represent.") from None
    except RecursionError:
        raise BadRequest(NESTED_TOO_DEEPLY) from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if nested_deeper_than(body, MAX_NESTING):
        raise BadRequest(NESTED_TOO_DEEPLY)
    return body


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` holds arrays or objects more than ``limit`` levels deep (without recursing)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def install(
    app: Sanic,
    public_paths: Iterable[str] = ("/health", "/ready", "/metrics", "/ops"),
    public_prefixes: tuple[str, ...] = ("/ops/",),
) -> None:
    """Every response carries the request id; every route but the public ones needs ``X-User-Id``. The operations
    routes (``/ops``, ``/ops/...``) are the gateway's operators', never a user's."""
    open_paths = frozenset(public_paths)

    @app.on_request(priority=100)
    async def identify(request: Request) -> None:
        request.ctx.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        current_request_id.set(request.ctx.request_id)
        public = request.path in open_paths or request.path.startswith(public_prefixes)
        if not public and request.method != "OPTIONS":
            request.ctx.user_id = user_id_from(claimed_identity(request))

    @app.on_response(priority=100)
    async def tag(request: Request, response: HTTPResponse) -> None:
        response.headers[REQUEST_ID_HEADER] = getattr(request.ctx, "request_id", None) or request_id_from(None)
        access_log.info("%s %s -> %d", request.method, request.path, response.status)
