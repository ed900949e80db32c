import contextlib
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.events import Envelope, FailureReason, InvalidMessage, PaymentFailed, PaymentRequested


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
