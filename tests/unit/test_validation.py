"""Every input rule of the public API, run against the Orders and Payments apps in-process (sanic-testing): each
refusal is answered with its status as ``application/problem+json`` before the request reaches a database.

The apps are the real ones (``create_app``: routes, identity and request-id middleware, the problem renderer). What
their startup would open is left closed: the ORM (process-wide state, which the integration tests of the same
session set up against their real database) and the messaging loops (Kafka clients, the LISTEN connection, the
payment deadline). A case that got past validation would need the database and fail on its status. The few cases
kept in tests/e2e/test_validation.py show that the gateway passes these problems through unchanged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient

from orders import settings as orders_settings
from orders.app import create_app as create_orders
from payments import settings as payments_settings
from payments.app import create_app as create_payments
from servicekit import requests
from servicekit.service import app as service_app

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from sanic_testing.testing import TestingResponse

PROBLEM = "application/problem+json"
USER = {"X-User-Id": "validation-user"}
JSON = {"Content-Type": "application/json"}


class ClosedOrm:
    """Stands in for Tortoise and its connections in ``servicekit.service.app``: nothing is opened or closed."""

    @staticmethod
    async def init(**_config: object) -> None:
        return None

    @staticmethod
    async def close_all(**_options: object) -> None:
        return None


def without_io(app: Sanic) -> Sanic:
    messaging = app.ctx.messaging
    messaging.start = lambda: None
    messaging.stop = ClosedOrm.close_all
    return app


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, SanicASGITestClient]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service_app, "Tortoise", ClosedOrm)
        patch.setattr(service_app, "connections", ClosedOrm)
        yield {
            "orders": SanicASGITestClient(without_io(create_orders(orders_settings.from_env({})))),
            "payments": SanicASGITestClient(without_io(create_payments(payments_settings.from_env({})))),
        }


@pytest.fixture
def orders(apps: dict[str, SanicASGITestClient]) -> SanicASGITestClient:
    return apps["orders"]


@pytest.fixture
def payments(apps: dict[str, SanicASGITestClient]) -> SanicASGITestClient:
    return apps["payments"]


def assert_problem(response: TestingResponse, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


async def test_missing_user_id_is_401(orders: SanicASGITestClient, payments: SanicASGITestClient) -> None:
    _, from_orders = await orders.get("/orders")
    _, from_payments = await payments.get("/accounts/balance")
    assert_problem(from_orders, 401)
    assert_problem(from_payments, 401)


@pytest.mark.parametrize("bad_id", ["a" * 65, "has space", "semi;colon", "dot.ted"])
async def test_malformed_user_id_is_400(orders: SanicASGITestClient, bad_id: str) -> None:
    _, response = await orders.get("/orders", headers={"X-User-Id": bad_id})
    assert_problem(response, 400)


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (0, "zero"),
        ("-1.00", "negative"),
        ("0.001", "three decimal places"),
        (10.123, "three decimal places as a number"),
        ("1000000000.01", "over the maximum"),
        ("abc", "not a number"),
        ("1_000", "digits grouped with _"),
        ("\u0661\u0662", "digits of another script"),
        ("\uff11\uff12", "full-width digits"),
        ("NaN", "not finite"),
        ("Infinity", "not finite"),
        (True, "a boolean"),
        (None, "null"),
        ([1], "a list"),
    ],
)
async def test_amount_breaking_a_rule_is_422(orders: SanicASGITestClient, amount: object, why: str) -> None:
    _, response = await orders.post("/orders", json={"amount": amount}, headers=USER)
    assert "'amount'" in assert_problem(response, 422)["detail"], why


@pytest.mark.parametrize(
    ("service", "path", "body"),
    [
        ("orders", "/orders", b'{"amount": 1e9999999999999999999}'),
        ("payments", "/accounts/deposit", b'{"amount": 1e-9999999999999999999}'),
        ("orders", "/orders", b'{"amount": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("payments", "/accounts/deposit", b"{" + b'"a":{' * 3000 + b"}" * 3001),
    ],
    ids=["huge exponent", "tiny exponent", "nested 2000 deep", "objects nested 3000 deep"],
)
async def test_json_no_decimal_or_parser_can_hold_is_400_without_a_stack_trace(
    apps: dict[str, SanicASGITestClient], caplog: pytest.LogCaptureFixture, service: str, path: str, body: bytes
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, response = await apps[service].post(path, content=body, headers=USER | JSON)

    assert_problem(response, 400)
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


async def test_missing_amount_is_422(orders: SanicASGITestClient) -> None:
    _, response = await orders.post("/orders", json={"description": "x"}, headers=USER)
    assert_problem(response, 422)


async def test_description_over_500_characters_is_422(orders: SanicASGITestClient) -> None:
    _, response = await orders.post("/orders", json={"amount": 1, "description": "x" * 501}, headers=USER)
    assert_problem(response, 422)


async def test_description_must_be_a_string(orders: SanicASGITestClient) -> None:
    _, response = await orders.post("/orders", json={"amount": 1, "description": 5}, headers=USER)
    assert_problem(response, 422)


@pytest.mark.parametrize(("service", "path"), [("orders", "/orders"), ("payments", "/accounts/deposit")])
async def test_malformed_json_is_400(apps: dict[str, SanicASGITestClient], service: str, path: str) -> None:
    _, response = await apps[service].post(path, content=b'{"amount": ', headers=USER | JSON)
    assert_problem(response, 400)


async def test_json_that_is_not_an_object_is_400(orders: SanicASGITestClient) -> None:
    _, response = await orders.post("/orders", json=[{"amount": 1}], headers=USER)
    assert_problem(response, 400)


@pytest.mark.parametrize("body", [{"amount": "0.005"}, {}], ids=["three places", "no amount"])
async def test_deposit_amount_follows_the_same_rules(payments: SanicASGITestClient, body: dict) -> None:
    _, response = await payments.post("/accounts/deposit", json=body, headers=USER)
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=ten", "offset=-1", "status=SHIPPED", "limit=1&limit=2"]
)
async def test_bad_list_parameters_are_422(orders: SanicASGITestClient, query: str) -> None:
    _, response = await orders.get(f"/orders?{query}", headers=USER)
    assert_problem(response, 422)


async def test_malformed_idempotency_key_is_400(orders: SanicASGITestClient) -> None:
    """The key is judged with the order, before anything is claimed or written."""
    _, response = await orders.post("/orders", json={"amount": "1.00"}, headers=USER | {"Idempotency-Key": "has space"})
    assert_problem(response, 400)


@pytest.mark.parametrize(("depth", "deeper"), [(32, False), (33, True)])
def test_a_body_may_nest_as_deep_as_the_bound_and_no_deeper(depth: int, deeper: bool) -> None:
    """The same on every Python: 3.13's parser takes nesting that 3.11's cannot, so the bound is the service's."""
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    assert requests.nested_deeper_than({"a": value}, requests.MAX_NESTING) is deeper
