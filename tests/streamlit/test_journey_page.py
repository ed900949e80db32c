"""The Order journey page against the real stack: a paid order's steps in time order with the time between them,
and a pointer to the dead letters of an order that has some."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx

from messaging.events import Envelope, PaymentSucceeded
from stack.local import LocalStack
from tests.e2e.test_poison import produce
from tests.helpers import as_operator, as_user, eventually, funded_account, settled
from tests.streamlit.pages import open_page, problems, texts


async def journey_of(api: httpx.AsyncClient, order_id: str, steps: int) -> None:
    async def complete() -> bool:
        response = await api.get(f"/ops/orders/{order_id}/journey", headers=as_operator())
        return response.status_code == 200 and len(response.json()["steps"]) >= steps

    await eventually(complete)


async def test_a_paid_orders_journey_is_charted_step_by_step(
    gateway_url: str, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    order = (await api.post("/orders", json={"amount": "3.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, order["id"])
    await journey_of(api, order["id"], 8)

    page = open_page("journey")
    page.text_input[0].input(order["id"]).run()

    (table,) = (element.value for element in page.dataframe)
    assert table["Step"].iloc[0] == "1. order created"
    assert "order settled" in " ".join(table["Step"])
    assert (table["Since previous (ms)"] >= 0).all()
    assert list(table["At"]) == sorted(table["At"])
    assert len(page.get("vega_lite_chart")) == 1
    assert page.warning == []
    assert problems(page) == []


async def test_an_order_known_only_by_a_dead_letter_points_to_it(
    gateway_url: str, stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    order_id = str(uuid.uuid4())
    result = Envelope(PaymentSucceeded(uuid.UUID(order_id), user_id, Decimal("1.00")))
    await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)
    await journey_of(api, order_id, 1)

    page = open_page("journey")
    page.text_input[0].input(order_id).run()

    assert any("Dead letters about this order: orders-" in text for text in texts(page, "warning"))
    assert problems(page) == []


def test_a_malformed_order_id_is_told_not_sent(gateway_url: str) -> None:
    page = open_page("journey")
    page.text_input[0].input("not-an-order").run()

    assert texts(page, "error") == ["That is not an order id (a UUID)."]
