"""Helpers for tests that drive the real stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")

OPERATOR_TOKEN = "test-operator-token"


def as_user(user: str, **headers: str) -> dict[str, str]:
    return {"X-User-Id": user, **headers}


def as_operator(token: str = OPERATOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Wait for a condition instead of a fixed time; fails with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"condition not met within {timeout}s (last: {result!r})"
        await asyncio.sleep(interval)


async def funded_account(api: httpx.AsyncClient, user: str, amount: str) -> None:
    assert (await api.post("/accounts", headers=as_user(user))).status_code == 201
    response = await api.post("/accounts/deposit", json={"amount": amount}, headers=as_user(user))
    assert response.status_code == 200, response.text


async def settled(api: httpx.AsyncClient, user: str, order_id: str, timeout: float = 20.0) -> dict:
    """The order once it is PAID or FAILED."""

    async def check() -> dict | None:
        order = (await api.get(f"/orders/{order_id}", headers=as_user(user))).json()
        return order if order["status"] != "PENDING" else None

    return await eventually(check, timeout)
