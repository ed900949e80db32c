"""The input rules of the public API through the gateway: what only the whole stack can show.

Every rule is checked once against the services in-process (tests/unit/test_validation.py). Here a few
representative refusals, one per kind, show that the gateway passes each service's problem through unchanged; the
rest needs the database (what is accepted and kept, a second account, a missing one) or is the gateway's own
(routes, methods, body size, request ids)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from stack.local import ROOT, LocalStack
from tests.helpers import as_operator, as_user

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


async def test_missing_user_id_is_401(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/orders"), 401)


async def test_longest_valid_user_id_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.get("/orders", headers=as_user("A-z_0" + "9" * 59))
    assert response.status_code == 200


@pytest.mark.parametrize("amount", ["12.5", 12.5, 12, "0.01", "1000000000.00", 1000000000])
async def test_amounts_accepted_as_number_or_string(api: httpx.AsyncClient, user_id: str, amount: object) -> None:
    response = await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == f"{float(amount):.2f}"


async def test_an_order_amount_breaking_a_rule_is_a_422_from_orders(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post("/orders", json={"amount": "0.001"}, headers=as_user(user_id))
    assert "'amount'" in assert_problem(response, 422)["detail"]


async def test_json_nested_too_deeply_is_400_and_no_process_logs_a_stack_trace(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    body = b'{"amount": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    logs = sorted((ROOT / "tests" / "artifacts" / "logs").glob("*.log"))
    sizes = {log: log.stat().st_size for log in logs}

    response = await api.post("/orders", content=body, headers=as_user(user_id, **{"Content-Type": "application/json"}))

    assert_problem(response, 400)
    for log in logs:
        with log.open("rb") as written:
            written.seek(sizes[log])
            assert b"Traceback" not in written.read(), log


async def test_description_of_500_characters_is_kept(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post("/orders", json={"amount": 1, "description": "é" * 500}, headers=as_user(user_id))
    assert response.json()["description"] == "é" * 500


async def test_malformed_json_is_a_400_from_payments(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post(
        "/accounts/deposit", content=b'{"amount": ', headers=as_user(user_id, **{"Content-Type": "application/json"})
    )
    assert_problem(response, 400)


async def test_body_over_one_mebibyte_is_413(stack: LocalStack, user_id: str) -> None:
    """The size is judged from Content-Length before the body is read, and the server closes the connection after
    answering; a client still uploading may see a reset instead. So declare the size and send no body."""
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /orders HTTP/1.1\r\nHost: {host}\r\nX-User-Id: {user_id}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1024 * 1024 + 1}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    writer.close()

    assert head.startswith(b"HTTP/1.1 413")
    assert b"content-type: application/problem+json" in head.lower()


async def test_a_deposit_amount_breaking_a_rule_is_a_422_from_payments(api: httpx.AsyncClient, user_id: str) -> None:
    await api.post("/accounts", headers=as_user(user_id))
    response = await api.post("/accounts/deposit", json={"amount": "0.005"}, headers=as_user(user_id))
    assert "'amount'" in assert_problem(response, 422)["detail"]


async def test_a_bad_list_parameter_is_a_422_with_the_query_forwarded(api: httpx.AsyncClient, user_id: str) -> None:
    assert_problem(await api.get("/orders?limit=1&limit=2", headers=as_user(user_id)), 422)


async def test_second_account_for_a_user_is_409(api: httpx.AsyncClient, user_id: str) -> None:
    assert (await api.post("/accounts", headers=as_user(user_id))).status_code == 201
    assert_problem(await api.post("/accounts", headers=as_user(user_id)), 409)


async def test_balance_and_deposit_without_account_are_404(api: httpx.AsyncClient, user_id: str) -> None:
    assert_problem(await api.get("/accounts/balance", headers=as_user(user_id)), 404)
    assert_problem(await api.post("/accounts/deposit", json={"amount": 1}, headers=as_user(user_id)), 404)


async def test_unknown_route_is_404_and_never_proxied(api: httpx.AsyncClient, user_id: str) -> None:
    for path in ("/admin", "/ops", "/ops/kafka", "/accounts/../ops", "/orders/1/2", "/internal/ready"):
        assert_problem(await api.get(path, headers=as_user(user_id) | as_operator()), 404)


async def test_wrong_method_is_405(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.delete("/orders", headers=as_user(user_id))
    assert_problem(response, 405)


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient, user_id: str) -> None:
    given = await api.get("/orders", headers=as_user(user_id, **{"X-Request-Id": "trace-123"}))
    generated = await api.get("/orders")
    assert given.headers["X-Request-Id"] == "trace-123"
    assert len(generated.headers["X-Request-Id"]) >= 16
