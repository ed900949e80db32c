"""RFC 9457 problem details: every error any Gozon service returns is ``application/problem+json``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

log = logging.getLogger("gozon.errors")

PROBLEM_JSON = "application/problem+json"
Unreachable = tuple[type[BaseException], ...]


class Problem(SanicException):
    """An expected error: rendered as problem+json, logged as one line without a stack trace."""

    quiet = True
    status_code = 500
    message = "Internal Server Error"


class BadRequest(Problem):
    status_code, message = 400, "Bad Request"


class Unauthorized(Problem):
    status_code, message = 401, "Unauthorized"


class NotFound(Problem):
    status_code, message = 404, "Not Found"


class Conflict(Problem):
    status_code, message = 409, "Conflict"


class Unprocessable(Problem):
    status_code, message = 422, "Unprocessable Content"


class BadGateway(Problem):
    status_code, message = 502, "Bad Gateway"


class GatewayTimeout(Problem):
    status_code, message = 504, "Gateway Timeout"


def problem(status: int, detail: str, **extra: Any) -> HTTPResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    return json(body, status=status, content_type=PROBLEM_JSON)


def render(request: Request, exc: Exception) -> HTTPResponse:
    """The one place errors become responses: expected ones are one log line, unexpected ones a stack trace."""
    if not isinstance(exc, SanicException):
        if database_unreachable(exc, request.app.ctx.unreachable):
            log.warning("%s %s: database unreachable: %s", request.method, request.path, exc)
            response = problem(503, "The service's database is unreachable; retry shortly.", instance=request.path)
            response.headers["Retry-After"] = "1"
            return response
        log.error("%s %s failed", request.method, request.path, exc_info=exc)
        return problem(500, "The server could not complete the request.", instance=request.path)
    status = exc.status_code
    if status >= 500 and not exc.quiet:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
    else:
        log.debug("%s %s -> %d %s", request.method, request.path, status, exc)
    response = problem(status, str(exc) or HTTPStatus(status).phrase, instance=request.path)
    response.headers.update(exc.headers or {})
    return response


def database_unreachable(exc: BaseException | None, unreachable: Unreachable) -> bool:
    """A restart or lost connection, possibly wrapped by the ORM: a 503 to retry, not a bug worth a stack trace."""
    while exc is not None:
        if isinstance(exc, unreachable):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def install(app: Sanic, *, unreachable: Unreachable = (OSError,)) -> None:
    """Errors of ``app`` become problem+json; those of the ``unreachable`` kinds (which a database-backed service
    extends with its driver's: ``servicekit.service.app``), raised or wrapped, a 503 to retry."""
    app.ctx.unreachable = unreachable
    app.error_handler.add(Exception, render)
