"""The Dead letters page against the real stack: an operator finds a letter by its order, and replays it with a
reason; without a reason nothing is sent."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx

from messaging.events import Envelope, PaymentSucceeded
from stack.local import LocalStack
from tests.e2e.test_poison import produce
from tests.helpers import as_operator, eventually
from tests.streamlit.pages import open_page, problems, texts


async def test_an_operator_finds_a_letter_by_its_order_and_replays_it(
    gateway_url: str, stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    order_id = uuid.uuid4()
    result = Envelope(PaymentSucceeded(order_id, user_id, Decimal("2.00")))
    await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)

    async def letter() -> list[dict]:
        query = {"q": str(order_id)}
        return (await api.get("/ops/dead-letters", params=query, headers=as_operator())).json()["items"]

    [found] = await eventually(letter)
    page = open_page("dead_letters")
    page.text_input[0].input(str(order_id)).run()

    (table,) = (element.value for element in page.dataframe)
    assert list(table["Letter"]) == [found["id"]]
    assert list(table["State"]) == ["PENDING"]
    page.button[0].click().run()
    assert any("reason is required" in text for text in texts(page, "error"))
    assert (await letter())[0]["state"] == "PENDING"

    page.text_input[1].input("the order was restored")
    page = page.button[0].click().run()

    assert any(f"{found['id']}: replayed" in text for text in texts(page, "success"))
    states = {item["id"]: item["state"] for item in await letter()}
    assert states[found["id"]] == "REPLAYED"
    assert problems(page) == []
