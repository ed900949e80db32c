"""Every input rule of the public API, one test each, through the gateway."""

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


@pytest.mark.parametrize("bad_id", ["a" * 65, "has space", "semi;colon", "dot.ted"])
async def test_malformed_user_id_is_400(api: httpx.AsyncClient, bad_id: str) -> None:
    assert_problem(await api.get("/orders", headers={"X-User-Id": bad_id}), 400)


async def test_longest_valid_user_id_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.get("/orders", headers=as_user("A-z_0" + "9" * 59))
    assert response.status_code == 200


@pytest.mark.parametrize("amount", ["12.5", 12.5, 12, "0.01", "1000000000.00", 1000000000])
async def test_amounts_accepted_as_number_or_string(api: httpx.AsyncClient, user_id: str, amount: object) -> None:
    response = await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == f"{float(amount):.2f}"


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
        ("١٢", "digits of another script"),
        ("\uff11\uff12", "full-width digits"),
        ("NaN", "not finite"),
        ("Infinity", "not finite"),
        (True, "a boolean"),
        (None, "null"),
        ([1], "a list"),
    ],
)
async def test_amount_breaking_a_rule_is_422(api: httpx.AsyncClient, user_id: str, amount: object, why: str) -> None:
    response = await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))
    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/orders", b'{"amount": 1e9999999999999999999}'),
        ("/accounts/deposit", b'{"amount": 1e-9999999999999999999}'),
        ("/orders", b'{"amount": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("/accounts/deposit", b"{" + b'"a":{' * 3000 + b"}" * 3001),
    ],
    ids=["huge exponent", "tiny exponent", "nested 2000 deep", "objects nested 3000 deep"],
)
async def test_json_no_decimal_or_parser_can_hold_is_400_without_a_stack_trace(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str, path: str, body: bytes
) -> None:
    logs = sorted((ROOT / "tests" / "artifacts" / "logs").glob("*.log"))
    sizes = {log: log.stat().st_size for log in logs}

    response = await api.post(path, content=body, headers=as_user(user_id, **{"Content-Type": "application/json"}))

    assert_problem(response, 400)
    for log in logs:
        with log.open("rb") as written:
            written.seek(sizes[log])
            assert b"Traceback" not in written.read(), log


async def test_missing_amount_is_422(api: httpx.AsyncClient, user_id: str) -> None:
    assert_problem(await api.post("/orders", json={"description": "x"}, headers=as_user(user_id)), 422)


async def test_description_over_500_characters_is_422(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post("/orders", json={"amount": 1, "description": "x" * 501}, headers=as_user(user_id))
    assert_problem(response, 422)


async def test_description_of_500_characters_is_kept(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post("/orders", json={"amount": 1, "description": "é" * 500}, headers=as_user(user_id))
    assert response.json()["description"] == "é" * 500


async def test_description_must_be_a_string(api: httpx.AsyncClient, user_id: str) -> None:
    assert_problem(await api.post("/orders", json={"amount": 1, "description": 5}, headers=as_user(user_id)), 422)


@pytest.mark.parametrize("path", ["/orders", "/accounts/deposit"])
async def test_malformed_json_is_400(api: httpx.AsyncClient, user_id: str, path: str) -> None:
    response = await api.post(
        path, content=b'{"amount": ', headers=as_user(user_id, **{"Content-Type": "application/json"})
    )
    assert_problem(response, 400)


async def test_json_that_is_not_an_object_is_400(api: httpx.AsyncClient, user_id: str) -> None:
    assert_problem(await api.post("/orders", json=[{"amount": 1}], headers=as_user(user_id)), 400)


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


async def test_deposit_amount_follows_the_same_rules(api: httpx.AsyncClient, user_id: str) -> None:
    await api.post("/accounts", headers=as_user(user_id))
    assert_problem(await api.post("/accounts/deposit", json={"amount": "0.005"}, headers=as_user(user_id)), 422)
    assert_problem(await api.post("/accounts/deposit", json={}, headers=as_user(user_id)), 422)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=ten", "offset=-1", "status=SHIPPED", "limit=1&limit=2"]
)
async def test_bad_list_parameters_are_422(api: httpx.AsyncClient, user_id: str, query: str) -> None:
    assert_problem(await api.get(f"/orders?{query}", headers=as_user(user_id)), 422)


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
