"""The order-to-payment flow through the gateway, on real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import httpx

from tests.helpers import as_user, funded_account, settled


async def test_funded_order_is_paid_and_debited_once(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "100.00")

    created = await api.post("/orders", json={"amount": "69.75", "description": "book"}, headers=as_user(user_id))

    assert created.status_code == 201
    order = created.json()
    assert order["status"] == "PENDING"
    assert order["amount"] == "69.75"
    assert order["failure_reason"] is None
    uuid.UUID(order["id"])
    final = await settled(api, user_id, order["id"])
    assert final["status"] == "PAID"
    assert final["failure_reason"] is None
    balance = await api.get("/accounts/balance", headers=as_user(user_id))
    assert balance.json() == {"user_id": user_id, "balance": "30.25"}


async def test_order_over_the_balance_fails_for_funds(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "10.00")

    order = (await api.post("/orders", json={"amount": 10.01}, headers=as_user(user_id))).json()

    final = await settled(api, user_id, order["id"])
    assert (final["status"], final["failure_reason"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "10.00"


async def test_order_from_a_user_without_account_is_accepted_then_fails(api: httpx.AsyncClient, user_id: str) -> None:
    created = await api.post("/orders", json={"amount": "5"}, headers=as_user(user_id))

    assert created.status_code == 201
    final = await settled(api, user_id, created.json()["id"])
    assert (final["status"], final["failure_reason"]) == ("FAILED", "ACCOUNT_NOT_FOUND")


async def test_list_is_newest_first_paged_and_filtered(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "3.00")
    ids = []
    for amount in ("1.00", "1.00", "50.00"):
        ids.append((await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))).json()["id"])
    for order_id in ids:
        await settled(api, user_id, order_id)

    everything = (await api.get("/orders", headers=as_user(user_id))).json()
    page = (await api.get("/orders?limit=1&offset=1", headers=as_user(user_id))).json()
    failed = (await api.get("/orders?status=FAILED", headers=as_user(user_id))).json()

    assert [item["id"] for item in everything["items"]] == ids[::-1]
    assert (everything["total"], everything["limit"], everything["offset"]) == (3, 50, 0)
    assert [item["id"] for item in page["items"]] == [ids[1]]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert [item["id"] for item in failed["items"]] == [ids[2]]


async def test_another_users_order_is_not_found(api: httpx.AsyncClient, user_id: str) -> None:
    order = (await api.post("/orders", json={"amount": "1"}, headers=as_user(user_id))).json()

    theirs = await api.get(f"/orders/{order['id']}", headers=as_user("someone-else"))
    unknown = await api.get(f"/orders/{uuid.uuid4()}", headers=as_user("someone-else"))
    malformed = await api.get("/orders/not-a-uuid", headers=as_user("someone-else"))

    assert theirs.status_code == unknown.status_code == malformed.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    assert theirs.json()["detail"] == unknown.json()["detail"] == malformed.json()["detail"]


async def test_forty_concurrent_orders_on_a_thousand_pay_exactly_twenty(
    api: httpx.AsyncClient, user_id: str, payments_db
) -> None:
    await funded_account(api, user_id, "1000.00")

    responses = await asyncio.gather(
        *(api.post("/orders", json={"amount": "50.00"}, headers=as_user(user_id)) for _ in range(40))
    )

    assert [r.status_code for r in responses] == [201] * 40
    finals = await asyncio.gather(*(settled(api, user_id, r.json()["id"], timeout=60) for r in responses))
    statuses = [order["status"] for order in finals]
    assert statuses.count("PAID") == 20
    assert statuses.count("FAILED") == 20
    assert {o["failure_reason"] for o in finals if o["status"] == "FAILED"} == {"INSUFFICIENT_FUNDS"}
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "0.00"
    debits = await payments_db.fetchval(
        "SELECT count(*) FROM payments WHERE user_id = $1 AND status = 'SUCCEEDED'", user_id
    )
    assert debits == 20


async def test_concurrent_deposits_never_lose_an_update(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "0.01")

    await asyncio.gather(
        *(api.post("/accounts/deposit", json={"amount": "1.11"}, headers=as_user(user_id)) for _ in range(30))
    )

    balance = (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"]
    assert Decimal(balance) == Decimal("0.01") + 30 * Decimal("1.11")
