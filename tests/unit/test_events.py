import contextlib
import dataclasses
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.events import (
    EVENT_TYPES,
    Envelope,
    Event,
    FailureReason,
    InvalidMessage,
    PaymentExpireRequested,
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
)


def test_an_envelope_survives_the_wire_with_exact_money() -> None:
    event = PaymentFailed(uuid.uuid4(), "alice", Decimal("0.10"), FailureReason.INSUFFICIENT_FUNDS)
    envelope = Envelope(event)

    wire = json.loads(envelope.to_json())
    decoded = Envelope.from_bytes(envelope.to_json().encode())

    assert decoded == envelope
    assert wire["amount"] == "0.10"
    assert (wire["type"], wire["version"]) == ("payment.failed", 1)
    assert set(wire) >= {"message_id", "type", "version", "occurred_at", "order_id", "user_id", "reason"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 1.5}, "'amount'"),
        ({"order_id": "nope"}, "'order_id'"),
        ({"user_id": ""}, "'user_id'"),
        ({"version": 2}, "unknown event type"),
        ({"type": "payment.teleported"}, "unknown event type"),
        ({"message_id": None}, "'message_id'"),
    ],
)
def test_events_that_break_their_schema_are_invalid(change: dict, reason: str) -> None:
    wire = json.loads(Envelope(PaymentRequested(uuid.uuid4(), "bob", Decimal("1.00"))).to_json())
    with pytest.raises(InvalidMessage, match=reason):
        Envelope.from_bytes(json.dumps(wire | change).encode())


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"type": "payment.requested"}', None])
def test_bytes_that_are_not_an_envelope_are_invalid(raw: bytes | None) -> None:
    with pytest.raises(InvalidMessage):
        Envelope.from_bytes(raw)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"amount": "99999999999999.999"}, "'amount' must be at most 1000000000.00"),
        ({"amount": "0.00"}, "'amount' must be greater than 0"),
        ({"amount": "1.005"}, "'amount' must have at most 2 decimal places"),
        ({"amount": "1_000"}, "'amount' is not a decimal number"),
        ({"user_id": "a" * 65}, "'user_id' must be 1-64 characters"),
        ({"user_id": "semi;colon"}, "'user_id' must be 1-64 characters"),
        ({"type": ["payment.requested"]}, "unknown event type"),
        ({"version": True}, "unknown event type"),
        ({"occurred_at": "2026-11-25T10:00:00"}, "'occurred_at' is not a valid datetime"),
    ],
)
def test_events_carrying_a_value_the_api_would_refuse_are_invalid(change: dict, rule: str) -> None:
    wire = json.loads(Envelope(PaymentRequested(uuid.uuid4(), "bob", Decimal("1.00"))).to_json())
    with pytest.raises(InvalidMessage, match=rule):
        Envelope.from_bytes(json.dumps(wire | change).encode())


def test_a_failure_reason_must_be_a_known_one() -> None:
    wire = json.loads(
        Envelope(PaymentFailed(uuid.uuid4(), "bob", Decimal("1.00"), FailureReason.PAYMENT_TIMEOUT)).to_json()
    )
    with pytest.raises(InvalidMessage, match="'reason'"):
        Envelope.from_bytes(json.dumps(wire | {"reason": "BAD_LUCK"}).encode())


def test_json_nested_too_deeply_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidMessage, match="nested too deeply"):
        Envelope.from_bytes(b"[" * 100_000 + b"]" * 100_000)


envelope_like = st.dictionaries(
    st.sampled_from(["message_id", "type", "version", "occurred_at", "order_id", "user_id", "amount", "reason"]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=5,
    )
    | st.sampled_from(["payment.requested", "payment.failed", "2026-11-25T10:00:00+00:00", str(uuid.uuid4()), "1.00"]),
)


@given(st.binary(max_size=200) | envelope_like.map(lambda data: json.dumps(data).encode()))
def test_no_bytes_make_decoding_raise_anything_but_invalid_message(raw: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        Envelope.from_bytes(raw)


ORDER_ID = uuid.UUID("5f0c6a2e-8b1d-4c3e-9f7a-2d4b6c8e0a1f")
EVERY_EVENT = [
    PaymentRequested(ORDER_ID, "alice", Decimal("12.50")),
    PaymentExpireRequested(ORDER_ID, "alice", Decimal("0.01")),
    PaymentSucceeded(ORDER_ID, "alice", Decimal("1000000000.00")),
    *(PaymentFailed(ORDER_ID, "alice", Decimal("7.00"), reason) for reason in FailureReason),
]


def wire_of(event: Event, **envelope: object) -> dict:
    return json.loads(Envelope(event, **envelope).to_json())  # type: ignore[arg-type]


def decode(wire: dict) -> Envelope:
    return Envelope.from_bytes(json.dumps(wire).encode())


def test_every_event_type_is_covered_here() -> None:
    assert {(type(event).TYPE, type(event).VERSION) for event in EVERY_EVENT} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda event: getattr(event, "reason", None) or event.TYPE)
def test_every_event_comes_back_from_the_wire_as_the_same_event_of_the_same_class(event: Event) -> None:
    envelope = Envelope(event)
    decoded = Envelope.from_bytes(envelope.to_json().encode())
    assert decoded == envelope
    assert type(decoded.event) is type(event)
    assert (decoded.type, decoded.order_id) == (event.TYPE, ORDER_ID)


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda event: getattr(event, "reason", None) or event.TYPE)
def test_on_the_wire_every_value_is_a_string_but_the_version(event: Event) -> None:
    """Money as a decimal string, never a JSON number a consumer might read as a float."""
    wire = wire_of(event)
    assert wire["version"] == 1
    assert all(isinstance(value, str) for name, value in wire.items() if name != "version")
    assert wire["amount"] == str(event.amount)  # type: ignore[attr-defined]


def test_the_message_id_and_the_moment_survive_the_wire_with_their_offset() -> None:
    message_id = uuid.uuid4()
    moment = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode(wire_of(EVERY_EVENT[0], message_id=message_id, occurred_at=moment))
    assert decoded.message_id == message_id
    assert decoded.occurred_at == moment
    assert decoded.occurred_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("name", ["message_id", "type", "version", "occurred_at"])
def test_an_envelope_lacking_a_header_field_is_invalid_and_says_which(name: str) -> None:
    wire = wire_of(EVERY_EVENT[0])
    del wire[name]
    with pytest.raises(InvalidMessage, match=f"envelope lacks {name}"):
        decode(wire)


@pytest.mark.parametrize(
    ("event", "name"),
    [(event, f.name) for event in EVERY_EVENT[:4] for f in dataclasses.fields(event)],
    ids=lambda value: value if isinstance(value, str) else value.TYPE,
)
def test_an_event_lacking_one_of_its_fields_is_invalid_and_says_which(event: Event, name: str) -> None:
    wire = wire_of(event)
    del wire[name]
    with pytest.raises(InvalidMessage, match=f"{event.TYPE} lacks '{name}'"):
        decode(wire)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "payment.refunded"}, "unknown event type 'payment.refunded' version 1"),
        ({"type": "PAYMENT.REQUESTED"}, "unknown event type"),
        ({"version": "1"}, "unknown event type 'payment.requested' version '1'"),
        ({"version": 1.0}, "unknown event type"),
        ({"version": 0}, "unknown event type"),
        ({"type": None}, "unknown event type None"),
    ],
)
def test_a_type_or_version_nobody_handles_is_invalid(change: dict, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode(wire_of(EVERY_EVENT[0]) | change)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 1}, "'amount' must be a string: 1"),
        ({"amount": None}, "'amount' must be a string"),
        ({"order_id": 123}, "'order_id' must be a string: 123"),
        ({"order_id": ["5f0c6a2e-8b1d-4c3e-9f7a-2d4b6c8e0a1f"]}, "'order_id' must be a string"),
        ({"user_id": 7}, "'user_id' must be a string: 7"),
        ({"message_id": 42}, "'message_id' must be a string: 42"),
        ({"message_id": "not-a-uuid"}, "'message_id' is not a valid UUID"),
        ({"occurred_at": 1764064800}, "'occurred_at' must be a string"),
        ({"occurred_at": "yesterday"}, "'occurred_at' is not a valid datetime"),
        ({"reason": None}, "'reason' must be a string"),
        ({"reason": "insufficient_funds"}, "'reason' is not a valid FailureReason"),
    ],
)
def test_a_field_of_the_wrong_type_is_invalid_and_named(change: dict, reason: str) -> None:
    wire = wire_of(PaymentFailed(ORDER_ID, "alice", Decimal("7.00"), FailureReason.INSUFFICIENT_FUNDS))
    with pytest.raises(InvalidMessage, match=re.escape(reason)):
        decode(wire | change)


def test_a_huge_value_is_quoted_shortened_in_the_reason() -> None:
    """The reason lands in the dead letters and the logs: never the whole of a megabyte of garbage."""
    with pytest.raises(InvalidMessage) as caught:
        decode(wire_of(EVERY_EVENT[0]) | {"order_id": "x" * 1_000_000})
    assert len(str(caught.value)) < 200


def test_a_field_a_newer_producer_added_does_not_make_the_event_invalid() -> None:
    """A compatible addition keeps its version (an incompatible one gets a new version and class)."""
    wire = wire_of(EVERY_EVENT[0])
    assert decode(wire | {"currency": "EUR"}).event == EVERY_EVENT[0]
