"""``asyncapi.yaml`` describes the topics and events the code really uses: an event as the producers write it
matches its documented schema, and every documented example is an event the consumers accept."""

from __future__ import annotations

import inspect
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from messaging.consumer import EventConsumer
from messaging.events import (
    EVENT_TYPES,
    Envelope,
    Event,
    FailureReason,
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
)
from messaging.topics import Topics
from stack.local import ROOT

DOC: dict[str, Any] = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
DOC_URI = "urn:gozon:asyncapi"
REGISTRY = Registry().with_resource(DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT7))
EVENT_MESSAGES = {
    message["name"]: message for message in DOC["components"]["messages"].values() if message["name"] != "dead-letter"
}
ORDER_ID = uuid.UUID("3f0e7a52-8a0c-4b8e-9f0e-2d6c1b9a7e41")
SAMPLES = [
    PaymentRequested(ORDER_ID, "alice", Decimal("69.75")),
    PaymentSucceeded(ORDER_ID, "alice", Decimal("69.75")),
    PaymentFailed(ORDER_ID, "alice", Decimal("0.10"), FailureReason.ACCOUNT_NOT_FOUND),
]


def payload_validator(message: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator({"$ref": DOC_URI + message["payload"]["$ref"]}, registry=REGISTRY)


def documented_fields(message: dict[str, Any]) -> set[str]:
    schema = DOC["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
    return {field for part in schema["allOf"] for field in resolve(part)["properties"]}


def documented_version(message: dict[str, Any]) -> tuple[str, int]:
    event_part = DOC["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]["allOf"][1]
    return message["name"], event_part["properties"]["version"]["const"]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: Any = DOC
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def test_the_channels_are_the_topics_and_their_dead_letter_twins() -> None:
    topics = Topics()
    channels = DOC["channels"].values()

    assert sorted(channel["address"] for channel in channels) == sorted(topics.all())
    assert {channel["bindings"]["kafka"]["partitions"] for channel in channels} == {topics.partitions}


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
    dead_lettering = inspect.getsource(EventConsumer._dead_letter)

    for header in DOC["components"]["messages"]["DeadLetter"]["headers"]["required"]:
        assert f'"{header}"' in dead_lettering
