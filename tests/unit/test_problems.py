"""Errors become problem+json: a database that is away is a 503 to retry, anything unexpected a 500."""

import asyncpg
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient
from tortoise.exceptions import OperationalError

from servicekit import problems
from servicekit.service.app import DATABASE_UNREACHABLE


def app_raising(exc: Exception) -> SanicASGITestClient:
    app = Sanic(f"raises-{type(exc).__name__}")
    problems.install(app, unreachable=DATABASE_UNREACHABLE)

    @app.get("/")
    async def fail(_request: object) -> None:
        raise exc

    return SanicASGITestClient(app)


def wrapped(cause: Exception) -> OperationalError:
    try:
        raise OperationalError("query failed") from cause
    except OperationalError as exc:
        return exc


async def test_a_database_restart_is_a_503_with_retry_after() -> None:
    _, response = await app_raising(wrapped(asyncpg.CannotConnectNowError("starting up"))).get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unexpected_error_is_a_500_without_its_details() -> None:
    _, response = await app_raising(wrapped(ValueError("secret internals"))).get("/")
    assert response.status_code == 500
    assert "secret" not in response.text
