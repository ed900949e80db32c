"""The Orders page against the real stack: an order appears PENDING and the table shows it PAID on its own, from
the live order socket, or from the refresh loop when the socket cannot be opened."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from stack.local import free_ports
from streamlit_app.session import USER_KEY
from tests.helpers import eventually, funded_account
from tests.streamlit.pages import click, open_page, problems, texts


def place_order(page: AppTest, amount: str, description: str = "") -> AppTest:
    page.text_input(key="order_amount").input(amount)
    page.text_area(key="order_description").input(description)
    return click(page, "Place order")


def statuses(page: AppTest) -> dict[str, str]:
    if not page.dataframe:
        return {}
    table = page.dataframe[0].value
    return dict(zip(table["Order"], table["Status"], strict=True))


def is_live(page: AppTest) -> bool:
    return any(text.startswith(":material/bolt: Live:") for text in texts(page, "caption"))


async def until_live(page: AppTest) -> AppTest:
    """The page once its order socket is open: status changes from now on are heard."""

    async def live() -> bool:
        return is_live(page.run())

    await eventually(live)
    return page


def has_pending(page: AppTest) -> bool:
    return any(" pending" in text for text in texts(page, "caption"))


@pytest.fixture
def socket_unavailable(gateway_url: str) -> Iterator[str]:
    """The REST API answers, but nothing listens where the UI opens the order socket."""
    (port,) = free_ports(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "GATEWAY_WS_URL", f"ws://127.0.0.1:{port}")
        yield gateway_url


async def test_an_order_is_placed_and_turns_paid_in_the_table(
    gateway_url: str, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    page = await until_live(open_page("orders", user=user_id))
    assert any("No orders here yet" in text for text in texts(page, "info"))

    page = place_order(page, "42.50", "A book")

    (placed,) = texts(page, "success")
    order_id = placed.split()[1]
    assert placed.endswith("for 42.50 placed: PENDING until its payment settles.")
    assert statuses(page)[order_id] in {"PENDING", "PAID"}
    toasts = texts(page, "toast")

    async def paid_and_told() -> bool:
        toasts.extend(texts(page.run(), "toast"))
        return statuses(page)[order_id] == "PAID" and bool(toasts)

    await eventually(paid_and_told)
    assert toasts == [f"Order {order_id[:8]} for 42.50: paid."]
    row = page.dataframe[0].value.iloc[0]
    assert (row["Amount"], row["Description"], row["Failure reason"]) == ("42.50", "A book", "")
    assert not has_pending(page)
    assert problems(page) == []


async def test_a_failed_order_shows_its_reason(gateway_url: str, api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "1.00")
    page = place_order(await until_live(open_page("orders", user=user_id)), "5.00")
    toasts = texts(page, "toast")

    async def failed_and_told() -> bool:
        toasts.extend(texts(page.run(), "toast"))
        return page.dataframe[0].value.iloc[0]["Status"] == "FAILED" and bool(toasts)

    await eventually(failed_and_told)
    assert page.dataframe[0].value.iloc[0]["Failure reason"] == "Insufficient funds"
    assert toasts[0].endswith("for 5.00: failed (insufficient funds).")


def test_a_bad_amount_is_explained_next_to_the_order_form(gateway_url: str, user_id: str) -> None:
    page = place_order(open_page("orders", user=user_id), "-5")

    assert texts(page, "error") == ["'amount' must be greater than 0."]
    assert any("No orders here yet" in text for text in texts(page, "info"))


async def test_orders_are_paged_and_filtered(gateway_url: str, api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "2.00")
    page = open_page("orders", user=user_id)
    for _ in range(12):
        page = place_order(page, "1.00")

    async def all_settled() -> bool:
        return not has_pending(page.run())

    await eventually(all_settled)
    assert len(page.dataframe[0].value) == 10
    page.pagination[0].select(2).run()
    assert len(page.dataframe[0].value) == 2
    assert "Orders 11-12 of 12, newest first." in texts(page, "caption")

    page.selectbox(key="orders_status").select("PAID").run()

    assert list(page.dataframe[0].value["Status"]) == ["PAID", "PAID"]
    assert "Orders 1-2 of 2, newest first." in texts(page, "caption")


async def test_without_the_socket_the_table_still_settles(
    socket_unavailable: str, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    page = place_order(open_page("orders", user=user_id), "42.50")
    order_id = texts(page, "success")[0].split()[1]
    if statuses(page)[order_id] == "PENDING":
        assert any("this table refreshes every 1 s" in text for text in texts(page, "caption"))
    toasts = texts(page, "toast")

    async def paid() -> bool:
        toasts.extend(texts(page.run(), "toast"))
        return statuses(page)[order_id] == "PAID"

    await eventually(paid)
    assert not is_live(page)
    assert toasts == []
    assert problems(page) == []


async def test_switching_users_closes_the_previous_socket(gateway_url: str, user_id: str) -> None:
    """The gateway refuses a sixth socket per user: ten switches leave each user live only if every switch closes
    the previous user's socket."""
    page = await until_live(open_page("orders", user=user_id))
    for user in [f"{user_id}-other", user_id] * 5:
        page.session_state[USER_KEY] = user
        await until_live(page)
