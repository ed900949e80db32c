"""``openapi.yaml`` is the gateway's whole public contract: it documents exactly the gateway's routes (a WebSocket
by its handshake), each route the gateway forwards exists in the service behind it, and Swagger UI serves it with
"Try it out" allowed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient

from gateway import docs, routes
from gateway.app import create_app as create_gateway
from orders.app import create_app as create_orders
from payments.app import create_app as create_payments
from stack.local import ROOT, LocalStack

SPEC_PATH = ROOT / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
GATEWAY_OWN = {("GET", "/health"), ("GET", "/ready")}
METRICS = ("GET", "/metrics")
"""Every process serves its own; the gateway's is documented, as an operator's."""
SWITCHING_PROTOCOLS = "101"
SWAGGER_ORIGIN = "http://localhost:8082"

Operation = tuple[str, str]


def documented() -> set[Operation]:
    return {(method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in HTTP_METHODS}


def openapi_path(sanic_uri: str) -> str:
    """``/orders/<order_id:str>`` -> ``/orders/{order_id}``."""
    return re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", sanic_uri)


def documented_websockets() -> set[Operation]:
    """The operations documented as a WebSocket handshake: they answer 101 Switching Protocols."""
    return {
        (method, path)
        for method, path in documented()
        if SWITCHING_PROTOCOLS in SPEC["paths"][path][method.lower()]["responses"]
    }


def app_routes(app: Sanic) -> set[Operation]:
    """Every route of the app; a WebSocket route by its handshake, a GET."""
    return {(method, openapi_path(route.uri)) for route in app.router.routes for method in route.methods}


def websocket_routes(app: Sanic) -> set[Operation]:
    return {
        (method, openapi_path(route.uri))
        for route in app.router.routes
        if route.extra.websocket
        for method in route.methods
    }


def gateway_routes() -> set[Operation]:
    """The gateway's routes, with ``/ops/{service}`` spelled out for each service it knows."""
    app = create_gateway()
    operations = app_routes(app) - {("GET", "/ops/{service}")}
    return operations | {("GET", f"/ops/{service}") for service in app.ctx.upstreams}


def public_routes(app: Sanic) -> set[Operation]:
    """A service's routes as the gateway publishes them: its ``/ops`` as ``/ops/<service>``, its part of an order's
    journey as the whole journey, without the service's own ``/health``, ``/ready`` and ``/metrics``."""
    renamed = {
        ("GET", "/ops"): ("GET", f"/ops/{app.name}"),
        ("GET", "/ops/journey/{order_id}"): ("GET", "/ops/orders/{order_id}/journey"),
    }
    return {renamed.get(operation, operation) for operation in app_routes(app) - GATEWAY_OWN - {METRICS}}


def proxied(table: Iterable[tuple[str, list[str]]]) -> set[Operation]:
    return {(method, openapi_path(uri)) for uri, methods in table for method in methods}


def test_the_spec_is_a_valid_openapi_3_0_document_for_the_gateway() -> None:
    schema = schemathesis.openapi.from_path(SPEC_PATH)

    schema.validate()
    assert SPEC["openapi"] == "3.0.3"
    assert [server["url"] for server in SPEC["servers"]] == ["http://localhost:8000"]


def test_the_spec_documents_exactly_the_gateway_routes() -> None:
    assert gateway_routes() == documented()


def test_each_forwarded_route_exists_in_the_service_behind_it() -> None:
    assert proxied(routes.ACCOUNTS) <= public_routes(create_payments())
    assert proxied(routes.ORDERS) <= public_routes(create_orders())


def test_the_websocket_is_documented_as_one_and_served_as_one_behind_the_gateway() -> None:
    gateway_websockets = websocket_routes(create_gateway())

    assert gateway_websockets == documented_websockets() == {("GET", "/ws/orders")}
    assert gateway_websockets == websocket_routes(create_orders())


def test_every_service_route_is_published_by_the_gateway() -> None:
    services = public_routes(create_orders()) | public_routes(create_payments())

    assert services | GATEWAY_OWN | {METRICS} == documented()


@pytest.mark.parametrize(("path", "method"), sorted((path, method.lower()) for method, path in documented()))
def test_every_operation_states_identity_request_id_and_problem_errors(path: str, method: str) -> None:
    operation = SPEC["paths"][path][method]
    parameters = {resolve(parameter)["name"] for parameter in operation["parameters"]}
    responses = {status: resolve(response) for status, response in operation["responses"].items()}

    operator_only = path.startswith("/ops/") or (method.upper(), path) == METRICS
    assert "X-Request-Id" in parameters
    assert ("X-User-Id" in parameters) == ((method.upper(), path) not in GATEWAY_OWN and not operator_only)
    assert operation.get("security") == ([{"OperatorToken": []}] if operator_only else None)
    for status, response in responses.items():
        if status == SWITCHING_PROTOCOLS:
            # The WebSocket library writes the handshake's answer itself, past the middleware that adds the header.
            assert "headers" not in response
            continue
        assert "X-Request-Id" in response["headers"], status
        if int(status) >= 400 and path != "/ready":
            assert list(response["content"]) == ["application/problem+json"], status


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` within the spec."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


async def test_swagger_ui_serves_the_spec_and_its_assets_locally() -> None:
    client = SanicASGITestClient(docs.create_app())

    _, page = await client.get("/")
    _, spec = await client.get("/openapi.yaml")
    _, bundle = await client.get("/assets/swagger-ui-bundle.js")
    _, stylesheet = await client.get("/assets/swagger-ui.css")

    assert page.status_code == 200
    assert "https://" not in page.text
    assert spec.status_code == 200
    assert yaml.safe_load(spec.text) == SPEC
    assert bundle.status_code == stylesheet.status_code == 200


async def test_the_gateway_lets_swagger_ui_try_every_call(stack: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        preflight = await client.options(
            "/orders",
            headers={
                "Origin": SWAGGER_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-user-id,x-request-id,idempotency-key",
            },
        )
        call = await client.get("/orders", headers={"Origin": SWAGGER_ORIGIN, "X-User-Id": "swagger-visitor"})

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] in (SWAGGER_ORIGIN, "*")
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = set(preflight.headers["access-control-allow-headers"].split(","))
    assert {"content-type", "x-user-id", "x-request-id", "idempotency-key"} <= allowed
    assert call.status_code == 200
    assert call.headers["access-control-allow-origin"] in (SWAGGER_ORIGIN, "*")
    assert "x-request-id" in call.headers["access-control-expose-headers"]


WITH_BODY = sorted(
    (path, method.lower()) for method, path in documented() if "requestBody" in SPEC["paths"][path][method.lower()]
)


@pytest.mark.parametrize(("path", "method"), WITH_BODY)
def test_every_operation_with_a_body_documents_the_400_for_one_that_is_not_json(path: str, method: str) -> None:
    assert "400" in SPEC["paths"][path][method]["responses"]
