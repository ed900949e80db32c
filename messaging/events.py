"""Event schemas and their JSON envelope.

On the wire every event is one flat JSON object: ``message_id`` (UUID), ``type``, ``version``, ``occurred_at``
and the event's own fields. Money travels as a decimal string. A new incompatible shape gets a new version
number and its own class; consumers dispatch on ``(type, version)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, get_type_hints


class InvalidMessage(ValueError):
    """The bytes are not an event we understand: they go to the dead-letter topic, never retried."""


class FailureReason(StrEnum):
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"


@dataclass(frozen=True)
class Event:
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


@dataclass(frozen=True)
class PaymentRequested(Event):
    """Orders asks Payments to debit ``amount`` from the user's account for one order."""

    TYPE: ClassVar[str] = "payment.requested"
    order_id: uuid.UUID
    user_id: str
    amount: Decimal


@dataclass(frozen=True)
class PaymentSucceeded(Event):
    TYPE: ClassVar[str] = "payment.succeeded"
    order_id: uuid.UUID
    user_id: str
    amount: Decimal


@dataclass(frozen=True)
class PaymentFailed(Event):
    TYPE: ClassVar[str] = "payment.failed"
    order_id: uuid.UUID
    user_id: str
    amount: Decimal
    reason: FailureReason


EVENT_TYPES: dict[tuple[str, int], type[Event]] = {
    (cls.TYPE, cls.VERSION): cls for cls in (PaymentRequested, PaymentSucceeded, PaymentFailed)
}
ENVELOPE_FIELDS = ("message_id", "type", "version", "occurred_at")


@dataclass(frozen=True)
class Envelope:
    event: Event
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def type(self) -> str:
        return self.event.TYPE

    def to_json(self) -> str:
        fields = {f.name: _to_wire(getattr(self.event, f.name)) for f in dataclasses.fields(self.event)}
        header = {
            "message_id": str(self.message_id),
            "type": self.event.TYPE,
            "version": self.event.VERSION,
            "occurred_at": self.occurred_at.isoformat(),
        }
        return json.dumps(header | fields, separators=(",", ":"))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Envelope:
        try:
            data = json.loads(raw or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidMessage(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidMessage("not a JSON object")
        missing = [name for name in ENVELOPE_FIELDS if name not in data]
        if missing:
            raise InvalidMessage(f"envelope lacks {', '.join(missing)}")
        event_class = EVENT_TYPES.get((data["type"], data["version"]))
        if event_class is None:
            raise InvalidMessage(f"unknown event type {data['type']!r} version {data['version']!r}")
        return cls(
            event=_decode(event_class, data),
            message_id=_convert(uuid.UUID, data["message_id"], "message_id"),
            occurred_at=_convert(datetime, data["occurred_at"], "occurred_at"),
        )


def _to_wire(value: Any) -> Any:
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    return value


@functools.cache
def _field_types(event_class: type[Event]) -> dict[str, Any]:
    return get_type_hints(event_class)


def _decode(event_class: type[Event], data: dict[str, Any]) -> Event:
    hints = _field_types(event_class)
    values = {}
    for f in dataclasses.fields(event_class):
        if f.name not in data:
            raise InvalidMessage(f"{event_class.TYPE} lacks '{f.name}'")
        values[f.name] = _convert(hints[f.name], data[f.name], f.name)
    return event_class(**values)


def _convert(kind: type, value: Any, name: str) -> Any:
    try:
        if kind is Decimal:
            if not isinstance(value, str):
                raise InvalidOperation
            amount = Decimal(value)
            if not amount.is_finite():
                raise InvalidOperation
            return amount
        if kind is datetime:
            return datetime.fromisoformat(value)
        if kind is str:
            if not isinstance(value, str) or not value:
                raise TypeError
            return value
        return kind(value)
    except (InvalidOperation, TypeError, ValueError, AttributeError):
        raise InvalidMessage(f"'{name}' is not a valid {kind.__name__}: {value!r}") from None
