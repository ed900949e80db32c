"""``GET /metrics`` on the real stack: the gateway's is an operator's and holds only its own series, the services'
answer on their own ports, and the series move when orders flow, letters die and deliveries repeat."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from messaging.events import Envelope, PaymentRequested
from stack.local import LocalStack
from tests.e2e.test_poison import produce
from tests.helpers import as_operator, as_user, eventually, funded_account, settled

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]

SERVICE_SERIES = {
    "gozon_http_requests_total",
    "gozon_http_request_duration_seconds_bucket",
    "gozon_outbox_pending",
    "gozon_outbox_oldest_age_seconds",
    "gozon_outbox_published_total",
    "gozon_consumer_lag",
    "gozon_messages_processed_total",
    "gozon_messages_retried_total",
    "gozon_dead_letters_total",
    "gozon_background_task_restarts_total",
}


async def scrape(url: str, headers: dict[str, str] | None = None) -> Series:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none yet)."""
    wanted = set(labels.items())
    return sum(sample for (found, found_labels), sample in series.items() if found == name and wanted <= found_labels)


def service_url(stack: LocalStack, service: str) -> str:
    return f"http://127.0.0.1:{getattr(stack.ports, service)}"


@pytest.mark.parametrize(
    "headers", [{}, as_user("alice"), as_operator("not-the-token")], ids=["nothing", "a user id", "a wrong token"]
)
async def test_the_gateways_metrics_are_an_operators(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await api.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_gateway_reports_its_own_requests_by_route_and_never_the_services(
    stack: LocalStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "5.00")
    order_id = str(uuid.uuid4())
    assert (await api.get(f"/orders/{order_id}", headers=as_user(user_id))).status_code == 404

    series = await scrape(stack.gateway_url, as_operator())

    services = {dict(labels).get("service") for _name, labels in series if dict(labels).get("service")}
    assert services == {"gateway"}
    assert value(series, "gozon_http_requests_total", route="/orders/<order_id:str>", status="404") >= 1
    assert value(series, "gozon_http_request_duration_seconds_count", route="/accounts/deposit", method="POST") >= 1
    assert not any(order_id in dict(labels).get("route", "") for _name, labels in series)


async def test_the_series_move_when_an_order_is_paid(stack: LocalStack, api: httpx.AsyncClient, user_id: str) -> None:
    orders, payments = service_url(stack, "orders"), service_url(stack, "payments")
    before = {"orders": await scrape(orders), "payments": await scrape(payments)}
    await funded_account(api, user_id, "10.00")
    placed = await api.post("/orders", json={"amount": "4.00"}, headers=as_user(user_id))
    assert (await settled(api, user_id, placed.json()["id"]))["status"] == "PAID"
    after = {"orders": await scrape(orders), "payments": await scrape(payments)}

    def moved(scraped: str, name: str, **labels: str) -> float:
        return value(after[scraped], name, **labels) - value(before[scraped], name, **labels)

    commands, results = stack.topics.payment_commands, stack.topics.payment_results
    for service in ("orders", "payments"):
        assert SERVICE_SERIES - {name for name, _labels in after[service]} == set(), service
    assert moved("orders", "gozon_orders_settled_total", status="PAID") >= 1
    assert moved("orders", "gozon_order_settle_seconds_count") >= 1
    assert moved("orders", "gozon_outbox_published_total", service="orders", topic=commands) >= 1
    assert moved("payments", "gozon_messages_processed_total", service="payments", topic=commands) >= 1
    assert moved("payments", "gozon_outbox_published_total", service="payments", topic=results) >= 1
    assert moved("orders", "gozon_messages_processed_total", service="orders", topic=results) >= 1
    assert moved("orders", "gozon_http_requests_total", route="/orders", method="POST", status="201") >= 1
    assert value(after["orders"], "gozon_consumer_lag", service="orders", topic=results) >= 0
    assert ("gozon_orders_overdue", frozenset()) in after["orders"]


async def test_a_dead_letter_and_a_repeated_delivery_are_counted(stack: LocalStack, user_id: str) -> None:
    payments, commands = service_url(stack, "payments"), stack.topics.payment_commands
    before = await scrape(payments)
    command = Envelope(PaymentRequested(uuid.uuid4(), user_id, Decimal("1.00"))).to_json().encode()
    for delivery in (command, command, b"{not json"):
        await produce(stack, commands, delivery, user_id)

    async def counted() -> Series | None:
        series = await scrape(payments)
        dead = value(series, "gozon_dead_letters_total", topic=commands) - value(
            before, "gozon_dead_letters_total", topic=commands
        )
        again = value(series, "gozon_inbox_duplicates_total", service="payments") - value(
            before, "gozon_inbox_duplicates_total", service="payments"
        )
        return series if dead >= 1 and again >= 1 else None

    assert await eventually(counted)
