"""The Operations page against the real stack: health, orders by status, throughput, failures, messaging."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from stack.local import LocalStack
from streamlit_app.api_client import GatewayClient
from tests.helpers import OPERATOR_TOKEN, as_user, eventually, funded_account, settled
from tests.streamlit.pages import open_page, problems, texts


def shown_figures(gateway_url: str) -> dict[str, str]:
    """The counts as the page must show them (``≈`` before an estimate), from the same API the page asks."""
    client = GatewayClient(gateway_url)
    orders, payments = client.orders_figures(OPERATOR_TOKEN), client.payments_figures(OPERATOR_TOKEN)
    return {
        label: str(count) for label, count in (orders.shown_by_status | {"Accounts": payments.shown_accounts}).items()
    }


async def the_page_shows_the_figures(gateway_url: str, page: AppTest) -> bool:
    """The page's counts equal the API's, asked before and after the page is drawn again (so that nothing moved
    meanwhile)."""
    before = await asyncio.to_thread(shown_figures, gateway_url)
    await asyncio.to_thread(page.run)
    after = await asyncio.to_thread(shown_figures, gateway_url)
    return before == after == {metric.label: str(metric.value) for metric in page.metric}


async def test_operations_shows_health_orders_failures_and_messaging(
    gateway_url: str, stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    for amount in ("4.00", "20.00"):
        order = (await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))).json()
        await settled(api, user_id, order["id"])

    page = await asyncio.to_thread(open_page, "operations")

    badges = [text for text in texts(page, "markdown") if "badge[" in text]
    assert len(badges) == 3
    assert all("Ready" in badge or "Up" in badge for badge in badges)
    assert await eventually(lambda: the_page_shows_the_figures(gateway_url, page))
    (chart,) = page.get("vega_lite_chart")
    throughput = dataframe_util.convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    assert len(throughput) == 30  # 10-second buckets over 5 minutes
    assert throughput["Settled per second"].sum() >= 0.2
    failures, outbox, lag = (table.value for table in page.dataframe)
    assert order["id"] in set(failures["Order"])
    assert list(outbox["Service"]) == ["orders", "payments"]
    assert set(lag["Topic"]) == {stack.topics.payment_commands, stack.topics.payment_results}
    assert any("asked as the operator" in text for text in texts(page, "caption"))
    assert problems(page) == []


def test_without_the_operator_token_the_page_asks_for_it_and_shows_nothing(
    gateway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOZON_OPERATOR_TOKEN")

    page = open_page("operations")

    assert [field.label for field in page.text_input] == ["Operator token"]
    assert page.metric == []
    assert page.dataframe == []
    page.text_input[0].input("not-the-token")
    page = page.button[0].click().run()
    assert any("refused" in text for text in texts(page, "error"))
    assert page.metric == []
    assert problems(page) == []
