"""``asyncapi.yaml`` describes the topics, events and live socket the code really uses: an event as the producers
write it matches its documented schema, every documented example is an event the consumers accept, and the
gateway's WebSocket sends the documented messages and close codes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from websockets.asyncio.client import ClientConnection

from gateway import live as gateway_live
from gateway.app import create_app as create_gateway
from gateway.settings import Settings as GatewaySettings
from messaging.dead_letters import DeadLetterRelay, DeadLetters
from messaging.events import (
    EVENT_TYPES,
    Envelope,
    Event,
    FailureReason,
    PaymentExpireRequested,
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
)
from messaging.topics import Topics
from orders import live as orders_live
from orders.domain import OrderStatus
from orders.models import DeadLetter, Order
from orders.views import order_view
from stack.local import ROOT, LocalStack
from tests.helpers import as_user, funded_account

DOC: dict[str, Any] = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
OPENAPI: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
DOC_URI = "urn:gozon:asyncapi"
REGISTRY = Registry().with_resource(DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT7))
KAFKA_CHANNELS = [channel for channel in DOC["channels"].values() if "kafka" in channel["bindings"]]
LIVE_CHANNEL = DOC["channels"]["liveOrders"]
ORDER_ID = uuid.UUID("3f0e7a52-8a0c-4b8e-9f0e-2d6c1b9a7e41")
CREATED = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
# Relayed by the gateway like any close code, but the end of a socket, not a server's reason to close it.
NORMAL_CLOSURE = 1000
SAMPLES = [
    PaymentRequested(ORDER_ID, "alice", Decimal("69.75")),
    PaymentExpireRequested(ORDER_ID, "alice", Decimal("69.75")),
    PaymentSucceeded(ORDER_ID, "alice", Decimal("69.75")),
    PaymentFailed(ORDER_ID, "alice", Decimal("0.10"), FailureReason.ACCOUNT_NOT_FOUND),
]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: Any = DOC
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def channel_messages(channel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The channel's messages by name (a live message's name is its ``type``)."""
    return {message["name"]: message for message in map(resolve, channel["messages"].values())}


EVENT_MESSAGES = {
    name: message
    for channel in KAFKA_CHANNELS
    for name, message in channel_messages(channel).items()
    if name != "dead-letter"
}
LIVE_MESSAGES = channel_messages(LIVE_CHANNEL)


def order(status: OrderStatus, failure_reason: str | None = None, description: str | None = "A book") -> Order:
    """An order as the hub reads it from the database."""
    return Order(
        id=ORDER_ID,
        user_id="alice",
        amount=Decimal("69.7"),
        description=description,
        status=status,
        failure_reason=failure_reason,
        created_at=CREATED,
        updated_at=CREATED,
    )


PENDING = [order(OrderStatus.PENDING), order(OrderStatus.PENDING, description=None)]
LIVE_SAMPLES = {
    "empty-snapshot": orders_live.encode("snapshot", orders=[]),
    "snapshot": orders_live.encode("snapshot", orders=[order_view(pending) for pending in PENDING]),
    "paid": orders_live.encode("order.status_changed", order=order_view(order(OrderStatus.PAID))),
    "failed": orders_live.encode(
        "order.status_changed", order=order_view(order(OrderStatus.FAILED, "ACCOUNT_NOT_FOUND", description=None))
    ),
}


def payload_validator(message: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator({"$ref": DOC_URI + message["payload"]["$ref"]}, registry=REGISTRY)


def documented_fields(message: dict[str, Any]) -> set[str]:
    schema = DOC["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
    return {field for part in schema["allOf"] for field in resolve(part)["properties"]}


def documented_version(message: dict[str, Any]) -> tuple[str, int]:
    event_part = DOC["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]["allOf"][1]
    return message["name"], event_part["properties"]["version"]["const"]


def test_the_kafka_channels_are_the_topics_and_their_dead_letter_twins() -> None:
    topics = Topics()

    assert sorted(channel["address"] for channel in KAFKA_CHANNELS) == sorted(topics.all())
    assert {channel["bindings"]["kafka"]["partitions"] for channel in KAFKA_CHANNELS} == {topics.partitions}
    assert [channel for channel in DOC["channels"].values() if channel not in KAFKA_CHANNELS] == [LIVE_CHANNEL]


def test_every_event_type_and_version_is_documented() -> None:
    assert {documented_version(message) for message in EVENT_MESSAGES.values()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.TYPE)
def test_an_event_as_produced_matches_its_documented_schema(event: Event) -> None:
    message = EVENT_MESSAGES[event.TYPE]
    wire = json.loads(Envelope(event).to_json())

    payload_validator(message).validate(wire)
    assert set(wire) == documented_fields(message)


@pytest.mark.parametrize("name", sorted(EVENT_MESSAGES))
def test_the_documented_examples_are_events_the_consumers_accept(name: str) -> None:
    message = EVENT_MESSAGES[name]
    for example in message["examples"]:
        payload_validator(message).validate(example["payload"])
        assert Envelope.from_bytes(json.dumps(example["payload"]).encode()).type == name


def test_dead_letters_carry_the_documented_headers() -> None:
    documented = DOC["components"]["messages"]["DeadLetter"]["headers"]
    row = {
        "id": 7,
        "source_topic": "gozon.payment-commands",
        "source_partition": 2,
        "source_offset": 1187,
        "reason": "failed 5 times; giving up",
        "error_class": "NumericValueOutOfRangeError",
        "error_message": "numeric field overflow",
        "attempts": 5,
        "first_failed_at": CREATED,
        "last_failed_at": CREATED,
    }
    relay = DeadLetterRelay(DeadLetters(DeadLetter), "payments")

    headers = {name: value.decode() for name, value in relay._headers(row)}

    assert set(headers) == set(documented["required"]) == set(documented["properties"])
    Draft7Validator(documented, format_checker=Draft7Validator.FORMAT_CHECKER).validate(headers)


def test_the_live_channel_is_the_gateways_websocket() -> None:
    gateway = create_gateway()
    sockets = {route.uri for route in gateway.router.routes if route.extra.websocket}
    (server,) = (resolve(server) for server in LIVE_CHANNEL["servers"])

    assert LIVE_CHANNEL["address"] in sockets
    assert server["protocol"] == "ws"
    assert server["host"] == f"localhost:{GatewaySettings.port}"
    assert f"http://{server['host']}" in [server["url"] for server in OPENAPI["servers"]]
    assert LIVE_CHANNEL["address"] in OPENAPI["paths"]


@pytest.mark.parametrize("sample", sorted(LIVE_SAMPLES))
def test_a_live_message_as_the_hub_encodes_it_matches_its_documented_schema(sample: str) -> None:
    wire = json.loads(LIVE_SAMPLES[sample])

    payload_validator(LIVE_MESSAGES[wire["type"]]).validate(wire)


def test_a_live_order_has_the_shape_of_the_rest_apis_order() -> None:
    """The socket pushes what ``GET /orders/{order_id}`` returns: same fields, same values allowed."""
    pushed = DOC["components"]["schemas"]["Order"]
    returned = OPENAPI["components"]["schemas"]["Order"]
    openapi_enum = {name: OPENAPI["components"]["schemas"][name]["enum"] for name in ("OrderStatus", "FailureReason")}

    assert pushed["required"] == returned["required"]
    assert set(pushed["properties"]) == set(returned["properties"]) == set(order_view(order(OrderStatus.PAID)))
    assert pushed["properties"]["status"]["enum"] == openapi_enum["OrderStatus"]
    assert pushed["properties"]["failure_reason"]["enum"] == openapi_enum["FailureReason"]
    Draft7Validator({"$ref": f"{DOC_URI}#/components/schemas/Order"}, registry=REGISTRY).validate(returned["example"])


@pytest.mark.parametrize("name", sorted(LIVE_MESSAGES))
def test_the_documented_live_examples_match_their_schema(name: str) -> None:
    message = LIVE_MESSAGES[name]
    for example in message["examples"]:
        payload_validator(message).validate(example["payload"])
        assert example["payload"]["type"] == name


def test_every_close_code_the_sockets_send_is_documented() -> None:
    sent = {
        gateway_live.GOING_AWAY,
        gateway_live.POLICY_VIOLATION,
        gateway_live.INTERNAL_ERROR,
        orders_live.GOING_AWAY,
        orders_live.POLICY_VIOLATION,
        orders_live.TRY_AGAIN_LATER,
    }

    assert {int(code) for code in LIVE_CHANNEL["x-close-codes"]} == sent
    assert gateway_live.PASSED_THROUGH - {NORMAL_CLOSURE} <= sent


async def received(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), 20))


async def test_the_live_socket_sends_the_documented_messages(
    api: httpx.AsyncClient, stack: LocalStack, user_id: str
) -> None:
    """Recorded from the gateway: a whole-user socket (identified the browser way) and a one-order socket."""
    await funded_account(api, user_id, "10.00")
    socket_url = stack.gateway_url.replace("http", "ws", 1) + LIVE_CHANNEL["address"]

    async with websockets.connect(f"{socket_url}?user_id={user_id}") as socket:
        recorded = [await received(socket)]
        paid = (await api.post("/orders", json={"amount": "1.00"}, headers=as_user(user_id))).json()
        while recorded[-1]["type"] != "order.status_changed":
            recorded.append(await received(socket))
    async with websockets.connect(f"{socket_url}?order_id={paid['id']}", additional_headers=as_user(user_id)) as one:
        recorded.append(await received(one))

    for message in recorded:
        payload_validator(LIVE_MESSAGES[message["type"]]).validate(message)
    assert recorded[-2]["order"]["id"] == paid["id"]
    assert recorded[-1] == {"type": "snapshot", "orders": [recorded[-2]["order"]]}
