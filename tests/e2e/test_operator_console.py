"""The operator console through the gateway, on the real stack: only the operator token opens it; a dead letter is
listed, found by its order, replayed once however many operators ask at once, and its order then settles; a replay
of something already decided moves no money; discarding needs a reason; every action is audited."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest

from messaging.events import Envelope, PaymentRequested, PaymentSucceeded
from stack.local import LocalStack
from tests.conftest import BROKEN_USERS
from tests.e2e.test_poison import produce
from tests.helpers import as_operator, as_user, eventually, funded_account, settled
from tests.integration.kafka_tools import read_all, record_at


async def listed(api: httpx.AsyncClient, **query: str) -> list[dict]:
    """The letters the console lists for this query, once there is at least one."""

    async def found() -> list[dict]:
        response = await api.get("/ops/dead-letters", params=query, headers=as_operator())
        assert response.status_code == 200, response.text
        return response.json()["items"]

    return await eventually(found)


async def replay(api: httpx.AsyncClient, letter_id: str, reason: str = "cause fixed") -> dict:
    response = await api.post(f"/ops/dead-letters/{letter_id}/replay", json={"reason": reason}, headers=as_operator())
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


@pytest.mark.parametrize(
    "headers",
    [{}, as_user("alice"), as_operator("not-the-token"), {"Authorization": "Basic b3BlcmF0b3I6eA=="}],
    ids=["nothing", "a user id only", "a wrong token", "another scheme"],
)
async def test_operations_need_the_operator_token(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/ops/orders"),
        ("GET", "/ops/dead-letters"),
        ("POST", "/ops/dead-letters/orders-1/replay"),
        ("GET", "/ops/audit"),
    ):
        response = await api.request(method, path, headers=headers, json={"reason": "x"})
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["detail"] == "The operations endpoints need Authorization: Bearer <operator token>."


async def test_a_result_for_an_order_orders_lacked_is_replayed_once_and_the_order_then_settles(
    stack: LocalStack, api: httpx.AsyncClient, orders_db: asyncpg.Pool, user_id: str
) -> None:
    order_id = uuid.uuid4()
    result = Envelope(PaymentSucceeded(order_id, user_id, Decimal("3.00")))
    await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)
    [letter] = await listed(api, q=str(order_id))
    assert (letter["service"], letter["state"], letter["type"]) == ("orders", "PENDING", "payment.succeeded")
    assert letter["payload"]["order_id"] == str(order_id)
    assert letter["message_id"] == str(result.message_id)
    assert [item["id"] for item in await listed(api, q=str(result.message_id), service="orders")] == [letter["id"]]

    await orders_db.execute(
        "INSERT INTO orders (id, user_id, amount, status, created_at, updated_at) "
        "VALUES ($1, $2, 3.00, 'PENDING', now(), now())",
        order_id,
        user_id,
    )
    outcomes = await asyncio.gather(replay(api, letter["id"]), replay(api, letter["id"]))

    assert sorted(outcome["outcome"] for outcome in outcomes) == ["replayed", "skipped"]
    order = await settled(api, user_id, str(order_id))
    assert order["status"] == "PAID"
    copies = [
        record
        for record in await read_all(stack.broker.bootstrap_servers, stack.topics.payment_results)
        if str(result.message_id).encode() in (record.value or b"")
    ]
    assert len(copies) == 2, "the original and one replay"
    assert dict(copies[1].headers)["gozon.replays"] == b"1"
    [after] = await listed(api, q=str(order_id))
    assert (after["state"], after["replays"]) == ("REPLAYED", 1)


async def test_replaying_a_command_about_money_already_decided_debits_nothing(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    order = (await api.post("/orders", json={"amount": "4.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, order["id"])
    other_money = Envelope(PaymentRequested(uuid.UUID(order["id"]), user_id, Decimal("7.00")))
    await produce(stack, stack.topics.payment_commands, other_money.to_json().encode(), user_id)
    [letter] = await listed(api, q=str(other_money.message_id))

    assert (await replay(api, letter["id"]))["outcome"] == "replayed"
    # The user's next order shares the replay's partition: once it settled, the replay was consumed before it.
    after = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, after["id"])

    letters = await listed(api, q=order["id"])
    assert [(item["id"], item["state"]) for item in letters] == [(letter["id"], "REPLAYED")], (
        "Payments' inbox knew the message: the replay was a no-op"
    )
    assert (await api.get("/accounts/balance", headers=as_user(user_id))).json()["balance"] == "5.00"


async def test_a_broken_users_command_replayed_fails_again_as_a_new_letter(api: httpx.AsyncClient) -> None:
    user = f"{BROKEN_USERS}{uuid.uuid4().hex[:8]}"
    await funded_account(api, user, "10.00")
    order = (await api.post("/orders", json={"amount": "2.00"}, headers=as_user(user))).json()
    [letter] = await listed(api, q=order["id"])
    assert letter["attempts"] == 5
    assert "InjectedFault" in letter["error"]

    await replay(api, letter["id"])

    async def both() -> list[dict] | None:
        letters = await listed(api, q=order["id"])
        return letters if len(letters) == 2 else None

    newest, first = await eventually(both)
    assert (newest["state"], newest["replays"], first["state"]) == ("PENDING", 1, "REPLAYED")
    assert (await api.get("/accounts/balance", headers=as_user(user))).json()["balance"] == "10.00"


async def test_discard_needs_a_reason_and_every_action_is_audited(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    order_id = uuid.uuid4()
    result = Envelope(PaymentSucceeded(order_id, user_id, Decimal("1.00")))
    await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)
    [letter] = await listed(api, q=str(order_id))
    path = f"/ops/dead-letters/{letter['id']}/discard"

    refusals = ("{}", '{"reason": "  "}', '{"reason": 3}', r'{"reason": "a\u0000b"}', r'{"reason": "\ud800"}')
    for body in (*refusals, json.dumps({"reason": "x" * 501})):
        headers = as_operator() | {"Content-Type": "application/json"}
        refused = await api.post(path, content=body.encode(), headers=headers)
        assert refused.status_code == 422, body
    discarded = await api.post(path, json={"reason": "a test message"}, headers=as_operator())
    assert discarded.json()["results"][0]["outcome"] == "discarded"
    assert (await replay(api, letter["id"]))["outcome"] == "skipped"

    audit = (await api.get("/ops/audit", params={"limit": 200}, headers=as_operator())).json()["items"]
    mine = [action for action in audit if letter["id"] in action["letters"]]
    assert [(a["action"], a["reason"], a["outcome"][0]["outcome"]) for a in mine] == [
        ("replay", "cause fixed", "skipped"),
        ("discard", "a test message", "discarded"),
    ]
    assert {action["operator"] for action in mine} == {"operator"}
    unknown = await api.post("/ops/dead-letters/orders-999999999/discard", json={"reason": "x"}, headers=as_operator())
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "letter_id",
    ["orders-999999999", "payments-38713082827753341544621", "orders-١٢", "billing-1", "orders-"],
    ids=["no such row", "past bigint", "non-ASCII digits", "no such service", "no number"],
)
@pytest.mark.parametrize("action", ["replay", "discard"])
async def test_an_id_no_letter_can_have_is_404(api: httpx.AsyncClient, letter_id: str, action: str) -> None:
    response = await api.post(f"/ops/dead-letters/{letter_id}/{action}", json={"reason": "x"}, headers=as_operator())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_journey_of_a_paid_order_has_every_step_in_causal_order(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    order = (await api.post("/orders", json={"amount": "4.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, order["id"])

    async def complete() -> dict | None:
        response = await api.get(f"/ops/orders/{order['id']}/journey", headers=as_operator())
        assert response.status_code == 200, response.text
        journey = response.json()
        return journey if len(journey["steps"]) == 8 else None

    journey = await eventually(complete)

    steps = journey["steps"]
    at = {step["step"]: step["at"] for step in steps}
    assert [step["at"] for step in steps] == sorted(step["at"] for step in steps)
    causal = [
        "order created",
        "payment command written",
        "command received",
        "ledger decision",
        "payment result written",
        "order settled",
    ]
    assert [at[name] for name in causal] == sorted(at[name] for name in causal)
    assert at["payment command written"] <= at["payment command published"]
    assert at["payment result written"] <= at["payment result published"]
    by_step = {step["step"]: step for step in steps}
    assert by_step["command received"]["message_id"] == by_step["payment command written"]["message_id"]
    topic, _, partition, _, offset = by_step["payment command published"]["detail"].split()
    record = await record_at(stack.broker.bootstrap_servers, topic, int(partition), int(offset))
    assert json.loads(record.value)["message_id"] == by_step["payment command published"]["message_id"]
    assert by_step["order settled"]["detail"] == "PAID"
    assert {step["service"] for step in steps} == {"orders", "payments"}


async def test_the_journey_of_an_unknown_order_is_404(api: httpx.AsyncClient) -> None:
    for order_id in (str(uuid.uuid4()), "not-an-order"):
        response = await api.get(f"/ops/orders/{order_id}/journey", headers=as_operator())
        assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    [{"type": "a\x00b"}, {"q": "x" * 37}, {"q": "\x07"}, {"state": "LOST"}, {"limit": "0"}, {"service": "kafka"}],
)
async def test_a_filter_that_cannot_match_is_a_422(api: httpx.AsyncClient, query: dict[str, str]) -> None:
    response = await api.get("/ops/dead-letters", params=query, headers=as_operator())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_merged_list_pages_newest_first_and_deep(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    order_id = uuid.uuid4()
    for amount in ("1.00", "2.00"):
        result = Envelope(PaymentSucceeded(order_id, user_id, Decimal(amount)))
        await produce(stack, stack.topics.payment_results, result.to_json().encode(), user_id)

    async def both() -> list[dict] | None:
        letters = await listed(api, q=str(order_id))
        return letters if len(letters) == 2 else None

    newest, oldest = await eventually(both)
    second = await api.get(
        "/ops/dead-letters", params={"q": str(order_id), "limit": 1, "offset": 1}, headers=as_operator()
    )
    deep = await api.get("/ops/dead-letters", params={"limit": 200, "offset": 10_000}, headers=as_operator())

    assert newest["last_failed_at"] >= oldest["last_failed_at"]
    assert [item["id"] for item in second.json()["items"]] == [oldest["id"]]
    assert second.json()["total"] == 2
    assert (deep.status_code, deep.json()["items"]) == (200, [])
