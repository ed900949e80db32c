"""The Orders page against the real stack: an order appears PENDING and the table shows it PAID on its own."""

from __future__ import annotations

import httpx
from streamlit.testing.v1 import AppTest

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


async def test_an_order_is_placed_and_turns_paid_in_the_table(
    gateway_url: str, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    page = open_page("orders", user=user_id)
    assert any("No orders here yet" in text for text in texts(page, "info"))

    page = place_order(page, "42.50", "A book")

    (placed,) = texts(page, "success")
    order_id = placed.split()[1]
    assert placed.endswith("for 42.50 placed: PENDING until its payment settles.")
    assert statuses(page)[order_id] in {"PENDING", "PAID"}

    async def paid() -> bool:
        return statuses(page.run())[order_id] == "PAID"

    await eventually(paid)
    row = page.dataframe[0].value.iloc[0]
    assert (row["Amount"], row["Description"], row["Failure reason"]) == ("42.50", "A book", "")
    assert not any("refreshes every" in text for text in texts(page, "caption"))
    assert problems(page) == []


async def test_a_failed_order_shows_its_reason(gateway_url: str, api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "1.00")
    page = place_order(open_page("orders", user=user_id), "5.00")

    async def failed() -> bool:
        table = page.run().dataframe[0].value
        return table.iloc[0]["Status"] == "FAILED"

    await eventually(failed)
    assert page.dataframe[0].value.iloc[0]["Failure reason"] == "Insufficient funds"


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
        return not any("refreshes every" in text for text in texts(page.run(), "caption"))

    await eventually(all_settled)
    assert len(page.dataframe[0].value) == 10
    page.pagination[0].select(2).run()
    assert len(page.dataframe[0].value) == 2
    assert "Orders 11-12 of 12, newest first." in texts(page, "caption")

    page.selectbox(key="orders_status").select("PAID").run()

    assert list(page.dataframe[0].value["Status"]) == ["PAID", "PAID"]
    assert "Orders 1-2 of 2, newest first." in texts(page, "caption")
