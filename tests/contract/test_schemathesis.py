"""The live gateway against ``openapi.yaml``: property-based (schemathesis), whatever a client sends, the answer is
no server error, and its status, content type and body are the documented ones; then the requests a generator
rarely makes, and the promise about request ids."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stack.local import ROOT, LocalStack
from tests.helpers import as_operator, eventually

SPEC_PATH = ROOT / "openapi.yaml"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

contract = schemathesis.openapi.from_path(SPEC_PATH)
# GET /ws/orders stays in: over plain HTTP it runs the checks made before a WebSocket upgrade (identity, order_id)
# and otherwise ends in the documented 426, so every answer it gets is a documented one.
# Operations that take input get many examples. /ops/* and /metrics are the operator's, with the operator token;
# its figures answer in about half a second (they ask Kafka for offsets), so it gets a few, without the coverage
# phase's header variations.
OPERATORS = "^/(ops/|metrics$)"
inputs = contract.exclude(path_regex=OPERATORS)
figures = schemathesis.openapi.from_path(SPEC_PATH).include(path_regex=OPERATORS)
figures.config.phases.update(phases=["examples", "fuzzing"])


@pytest.fixture(scope="session")
async def gateway_url(stack: LocalStack) -> str:
    """The live gateway, once every service behind it is ready."""
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:

        async def ready() -> bool:
            return (await client.get("/ready")).status_code == 200

        await eventually(ready)
    return stack.gateway_url


def with_valid_user(headers: dict[str, Any] | None) -> dict[str, Any]:
    """Keep a generated ``X-User-Id`` when it is valid, so that short generated ids come back and find the accounts
    made earlier; otherwise a new one, so that the call gets past the identity check to the service."""
    headers = dict(headers or {})
    if not USER_ID.fullmatch(str(headers.get("X-User-Id", ""))):
        headers["X-User-Id"] = f"contract-{uuid.uuid4().hex[:12]}"
    return headers


def call(case: Case, gateway_url: str) -> schemathesis.Response:
    case.headers = with_valid_user(case.headers)
    return case.call_and_validate(base_url=gateway_url, checks=CHECKS)


@inputs.parametrize()
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_gateway_answers_as_documented(case: Case, gateway_url: str) -> None:
    call(case, gateway_url)


@figures.parametrize()
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_operations_are_as_documented(case: Case, gateway_url: str) -> None:
    case.headers = {**(case.headers or {}), **as_operator()}
    call(case, gateway_url)


def edge(
    name: str,
    operation: str,
    status: int,
    *,
    headers: dict[str, str | None] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    marks: Any = (),
) -> Any:
    """One request and the status it must get; ``None`` for a header leaves it out."""
    headers = {"X-User-Id": "edge-case", **(headers or {})}
    sent = {"headers": {k: v for k, v in headers.items() if v is not None}, "query": query or {}}
    return pytest.param(operation, sent, body, status, id=name, marks=marks)


@pytest.mark.parametrize(
    ("operation", "sent", "body", "status"),
    [
        edge("no-identity", "GET /orders", 401, headers={"X-User-Id": None}),
        edge("malformed-identity", "GET /orders", 400, headers={"X-User-Id": "not valid!"}),
        edge("NUL-in-description", "POST /orders", 422, body={"amount": 1, "description": "a\x00b"}),
        edge("unpaired-surrogate-in-description", "POST /orders", 422, body={"amount": 1, "description": "\ud800"}),
        edge("non-ASCII-idempotency-key", "POST /orders", 400, headers={"Idempotency-Key": "clé"}, body={"amount": 1}),
        edge(
            "non-ASCII-key-on-deposit",
            "POST /accounts/deposit",
            400,
            headers={"Idempotency-Key": "clé"},
            body={"amount": 1},
        ),
        edge("non-ASCII-accept", "GET /orders", 200, headers={"Accept": "é"}),
        edge("non-ASCII-request-id", "GET /orders", 200, headers={"X-Request-Id": "été"}),
        edge("socket-over-plain-HTTP", "GET /ws/orders", 426),
        edge(
            "socket-identity-in-query-without-upgrade",
            "GET /ws/orders",
            401,
            headers={"X-User-Id": None},
            query={"user_id": "edge-case"},
        ),
        edge(
            "socket-for-an-order-id-that-is-no-path-segment",
            "GET /ws/orders",
            404,
            query={"order_id": "?x"},
        ),
    ],
)
def test_requests_the_generator_rarely_makes_get_documented_answers(
    gateway_url: str, operation: str, sent: dict[str, Any], body: Any, status: int
) -> None:
    method, path = operation.split()
    documented = contract[path][method]
    case = documented.Case(**sent) if body is None else documented.Case(**sent, body=body)

    response = case.call_and_validate(base_url=gateway_url, checks=CHECKS)

    assert response.status_code == status, response.text


async def test_the_service_logs_a_request_under_the_id_its_caller_got_back(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """Also when the caller's own id was malformed and the gateway made a new one."""
    missing = f"/orders/{uuid.uuid4()}"
    response = await api.get(missing, headers={"X-User-Id": "tracer", "X-Request-Id": "not a valid id!"})
    request_id = response.headers["X-Request-Id"]
    assert stack.log_dir is not None
    service_log = stack.log_dir / f"orders-{stack.ports.orders}.log"

    async def logged() -> bool:
        return any(f"[rid={request_id}]" in line and missing in line for line in service_log.read_text().splitlines())

    assert response.status_code == 404
    assert await eventually(logged, timeout=5)
