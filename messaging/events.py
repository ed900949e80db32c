"""Event schemas and their JSON envelope.

On the wire every event is one flat JSON object: ``message_id`` (UUID), ``type``, ``version``, ``occurred_at``
and the event's own fields. Money travels as a decimal string. A new incompatible shape gets a new version
number and its own class; consumers dispatch on ``(type, version)``.

Decoding applies the same rules as the HTTP API (``messaging.values``): an event that carries a value the API would
have refused is invalid, whoever produced it, and is dead-lettered with the rule it broke instead of reaching a
handler (and a database that refuses it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, get_args, get_origin, get_type_hints

from messaging import values


class InvalidMessage(ValueError):
    """The bytes are not an event we understand, or it breaks a rule: it goes to the dead letters, never retried."""


class FailureReason(StrEnum):
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"


UserId = Annotated[str, values.user_id]
Money = Annotated[Decimal, values.amount]


@dataclass(frozen=True)
class Event:
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


@dataclass(frozen=True)
class PaymentRequested(Event):
    """Orders asks Payments to debit ``amount`` from the user's account for one order."""

    TYPE: ClassVar[str] = "payment.requested"
    order_id: uuid.UUID
    user_id: UserId
    amount: Money


@dataclass(frozen=True)
class PaymentExpireRequested(Event):
    """Orders asks Payments to close an order whose payment is overdue: Payments fails it (``PAYMENT_TIMEOUT``)
    unless it already decided it, and announces whichever decision stands."""

    TYPE: ClassVar[str] = "payment.expire_requested"
    order_id: uuid.UUID
    user_id: UserId
    amount: Money


@dataclass(frozen=True)
class PaymentSucceeded(Event):
    TYPE: ClassVar[str] = "payment.succeeded"
    order_id: uuid.UUID
    user_id: UserId
    amount: Money


@dataclass(frozen=True)
class PaymentFailed(Event):
    TYPE: ClassVar[str] = "payment.failed"
    order_id: uuid.UUID
    user_id: UserId
    amount: Money
    reason: FailureReason


EVENT_TYPES: dict[tuple[str, int], type[Event]] = {
    (cls.TYPE, cls.VERSION): cls for cls in (PaymentRequested, PaymentExpireRequested, PaymentSucceeded, PaymentFailed)
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

    @property
    def order_id(self) -> uuid.UUID | None:
        return getattr(self.event, "order_id", None)

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
        """The event, or InvalidMessage: no content of ``raw`` makes this raise anything else."""
        try:
            data = json.loads(raw or b"")
        except (ValueError, UnicodeDecodeError):
            raise InvalidMessage("not JSON") from None
        except RecursionError:
            raise InvalidMessage("JSON nested too deeply") from None
        if not isinstance(data, dict):
            raise InvalidMessage("not a JSON object")
        missing = [name for name in ENVELOPE_FIELDS if name not in data]
        if missing:
            raise InvalidMessage(f"envelope lacks {', '.join(missing)}")
        kind, version = data["type"], data["version"]
        event_class = EVENT_TYPES.get((kind, version)) if isinstance(kind, str) and type(version) is int else None
        if event_class is None:
            raise InvalidMessage(f"unknown event type {_shown(kind)} version {_shown(version)}")
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
    return get_type_hints(event_class, include_extras=True)


def _decode(event_class: type[Event], data: dict[str, Any]) -> Event:
    hints = _field_types(event_class)
    decoded = {}
    for f in dataclasses.fields(event_class):
        if f.name not in data:
            raise InvalidMessage(f"{event_class.TYPE} lacks '{f.name}'")
        decoded[f.name] = _convert(hints[f.name], data[f.name], f.name)
    return event_class(**decoded)


def _convert(kind: Any, value: Any, name: str) -> Any:
    if get_origin(kind) is Annotated:
        return _checked(get_args(kind)[1], value, name)
    if not isinstance(value, str):
        raise InvalidMessage(f"'{name}' must be a string: {_shown(value)}")
    try:
        if kind is datetime:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError
            return moment
        return kind(value)
    except ValueError:
        raise InvalidMessage(f"'{name}' is not a valid {kind.__name__}: {_shown(value)}") from None


def _checked(rule: Callable[[Any, str], Any], value: Any, name: str) -> Any:
    if not isinstance(value, str):
        raise InvalidMessage(f"'{name}' must be a string: {_shown(value)}")
    try:
        return rule(value, name)
    except values.RuleBroken as exc:
        raise InvalidMessage(f"{exc} Got {_shown(value)}.") from None


def _shown(value: Any, limit: int = 80) -> str:
    """The value as a reason quotes it: never the whole of a huge one."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
