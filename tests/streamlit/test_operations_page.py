"""The Operations page against the real stack: health, orders by status, throughput, failures, messaging."""

from __future__ import annotations

import httpx
from streamlit import dataframe_util

from stack.local import LocalStack
from tests.helpers import as_user, funded_account, settled
from tests.streamlit.pages import open_page, problems, texts


async def test_operations_shows_health_orders_failures_and_messaging(
    gateway_url: str, stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    for amount in ("4.00", "20.00"):
        order = (await api.post("/orders", json={"amount": amount}, headers=as_user(user_id))).json()
        await settled(api, user_id, order["id"])

    page = open_page("operations")

    badges = [text for text in texts(page, "markdown") if "badge[" in text]
    assert len(badges) == 3
    assert all("Ready" in badge or "Up" in badge for badge in badges)
    metrics = {metric.label: int(metric.value) for metric in page.metric}
    assert metrics["PAID"] >= 1
    assert metrics["FAILED"] >= 1
    assert metrics["Accounts"] >= 1
    (chart,) = page.get("vega_lite_chart")
    throughput = dataframe_util.convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    assert len(throughput) == 30  # 10-second buckets over 5 minutes
    assert throughput["Settled per second"].sum() >= 0.2
    failures, outbox, lag = (table.value for table in page.dataframe)
    assert order["id"] in set(failures["Order"])
    assert list(outbox["Service"]) == ["orders", "payments"]
    assert set(lag["Topic"]) == {stack.topics.payment_commands, stack.topics.payment_results}
    assert any("asked as **operator**" in text for text in texts(page, "caption"))
    assert problems(page) == []
