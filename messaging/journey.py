"""One order's journey as a service saw it: the steps its tables remember, each with when, what and which message.

Every lookup is by key or through an index, so a journey costs the same on a large database: the outbox rows of
the order are found among those its user's key published in a short window after the step that wrote them (the
outbox has no order column; the window keeps the scan to the rows published meanwhile) and among the unpublished
ones, its dead letters by ``dead_letters_order``, and the operators' actions on those letters in the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise import connections

OUTBOX_WINDOW = timedelta(minutes=1)
"""How long after the step that wrote it an outbox row of the order is looked for among the published rows."""


@dataclass(frozen=True)
class Step:
    at: datetime
    service: str
    step: str
    detail: str
    message_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "service": self.service,
            "step": self.step,
            "message_id": self.message_id,
            "detail": self.detail,
        }


async def outbox_steps(
    service: str, order_id: UUID, user_id: str, since: datetime, until: datetime, names: dict[str, str]
) -> list[Step]:
    """The order's outbox rows written between ``since`` and ``until``: each one's writing and publishing, named
    by its event type (``names``: type -> what the step is called)."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT message_id, topic, payload, created_at, published_at, published_partition, published_offset "
        "FROM outbox "
        "WHERE key = $1 AND strpos(payload, $2) > 0 AND (published_at IS NULL "
        "OR published_at BETWEEN $3 AND $4) ORDER BY id",
        [user_id, str(order_id), since - timedelta(seconds=1), until + OUTBOX_WINDOW],
    )
    steps = []
    for row in rows:
        name = names.get(json.loads(row["payload"]).get("type"), "event")
        message_id = str(row["message_id"])
        steps.append(Step(row["created_at"], service, f"{name} written", f"to {row['topic']}", message_id))
        if row["published_at"] is not None:
            steps.append(Step(row["published_at"], service, f"{name} published", _position(row), message_id))
    return steps


async def dead_letter_steps(service: str, order_id: UUID, table: str) -> list[Step]:
    """The order's dead letters, and every operator action on them."""
    db = connections.get("default")
    letters = await db.execute_query_dict(
        f"SELECT id, message_id, type, reason, attempts, first_failed_at, state FROM {table} WHERE order_id = $1",
        [order_id],
    )
    steps = [
        Step(
            letter["first_failed_at"],
            service,
            "dead-lettered",
            f"{service}-{letter['id']} ({letter['type']}, {letter['state']}) after {letter['attempts']} "
            f"attempt(s): {letter['reason']}",
            _text(letter["message_id"]),
        )
        for letter in letters
    ]
    if letters:
        actions = await db.execute_query_dict(
            "SELECT at, operator, action, reason, outcome FROM operator_actions WHERE letter_ids && $1::bigint[]",
            [[letter["id"] for letter in letters]],
        )
        steps += [
            Step(action["at"], service, f"{action['action']} by {action['operator']}", action["reason"])
            for action in actions
        ]
    return steps


def _position(row: dict[str, Any]) -> str:
    """Where Kafka put it, when the relay recorded it (rows published before it did are only known by topic)."""
    if row["published_offset"] is None:
        return row["topic"]
    return f"{row['topic']} partition {row['published_partition']} offset {row['published_offset']}"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
