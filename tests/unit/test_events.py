import json
import uuid
from decimal import Decimal

import pytest

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
