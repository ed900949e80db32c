"""Idempotency-Key on POST /orders and POST /accounts/deposit, through the gateway."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.helpers import as_user, funded_account


def keyed(user: str, key: str) -> dict[str, str]:
    return as_user(user, **{"Idempotency-Key": key})


async def test_repeated_order_returns_the_first_response_and_creates_one_order(
    api: httpx.AsyncClient, user_id: str
) -> None:
    key = str(uuid.uuid4())
    first = await api.post("/orders", json={"amount": "5.00", "description": "x"}, headers=keyed(user_id, key))
    second = await api.post("/orders", json={"amount": "5.00", "description": "x"}, headers=keyed(user_id, key))

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (await api.get("/orders", headers=as_user(user_id))).json()["total"] == 1


async def test_repeated_deposit_is_applied_once(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "1.00")
    key = str(uuid.uuid4())
    first = await api.post("/accounts/deposit", json={"amount": "2.50"}, headers=keyed(user_id, key))
    second = await api.post("/accounts/deposit", json={"amount": 2.5}, headers=keyed(user_id, key))

    assert first.json() == second.json() == {"user_id": user_id, "balance": "3.50"}
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "3.50"


async def test_same_key_with_another_body_is_422(api: httpx.AsyncClient, user_id: str) -> None:
    key = str(uuid.uuid4())
    await api.post("/orders", json={"amount": "5.00"}, headers=keyed(user_id, key))

    response = await api.post("/orders", json={"amount": "6.00"}, headers=keyed(user_id, key))

    assert response.status_code == 422
    assert (await api.get("/orders", headers=as_user(user_id))).json()["total"] == 1


async def test_keys_are_per_user(api: httpx.AsyncClient, user_id: str) -> None:
    key = str(uuid.uuid4())
    other = f"{user_id}-other"
    mine = await api.post("/orders", json={"amount": "5.00"}, headers=keyed(user_id, key))
    theirs = await api.post("/orders", json={"amount": "5.00"}, headers=keyed(other, key))

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_concurrent_requests_with_one_key_create_one_order(api: httpx.AsyncClient, user_id: str) -> None:
    """Requests that race: one wins; the others see it in flight (409) or get its response replayed."""
    key = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(api.post("/orders", json={"amount": "1.00"}, headers=keyed(user_id, key)) for _ in range(10))
    )

    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert (await api.get("/orders", headers=as_user(user_id))).json()["total"] == 1


async def test_a_failed_request_does_not_burn_its_key(api: httpx.AsyncClient, user_id: str) -> None:
    key = str(uuid.uuid4())
    no_account = await api.post("/accounts/deposit", json={"amount": "1.00"}, headers=keyed(user_id, key))
    await api.post("/accounts", headers=as_user(user_id))
    retried = await api.post("/accounts/deposit", json={"amount": "1.00"}, headers=keyed(user_id, key))

    assert no_account.status_code == 404
    assert retried.status_code == 200
    assert retried.json()["balance"] == "1.00"


async def test_malformed_key_is_400(api: httpx.AsyncClient, user_id: str) -> None:
    response = await api.post("/orders", json={"amount": "1.00"}, headers=keyed(user_id, "x" * 256))
    assert response.status_code == 400
