"""What an operator does with a service's dead letters: find them, read them, replay or discard them, every action
kept in ``operator_actions``.

A replay sends the letter's original bytes, key and headers (so its message id too) to its source topic, with
``gozon.replays`` counting the replays. That is safe whatever the letter was: Payments' inbox and ledger turn a
command already handled into a no-op, and Orders moves an order only from ``PENDING``. A letter is replayed at most
once: its row is locked and must still be ``PENDING``, so two operators replaying it at once publish it once (the
second waits for the first, and is told it was skipped). A replay that fails again becomes a new letter, whose
``replays`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from tortoise import connections, fields
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.models import Model
from tortoise.transactions import in_transaction

from messaging.context import in_own_context
from messaging.dead_letters import REPLAYS_HEADER, DeadLetters, Delivery, replays_of
from messaging.letter_rules import DISCARDED, MAX_BULK_REPLAY, PENDING, REPLAYED

MAX_ROW_ID = 2**63 - 1
COLUMNS = (
    "id, source_topic, source_partition, source_offset, message_id, type, order_id, reason, error_class, "
    "error_message, attempts, first_failed_at, last_failed_at, state, replays, payload"
)


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    type: str | None = None
    q: str | None = None
    """A message id or an order id."""

    def where(self, first_parameter: int = 1) -> tuple[str, list[Any]]:
        clauses, parameters = [], []
        for clause, value in (
            ("state = ${}", self.state),
            ("type = ${}", self.type),
            ("(message_id::text = ${0} OR order_id::text = ${0})", self.q and self.q.lower()),
        ):
            if value:
                parameters.append(value)
                clauses.append(clause.format(first_parameter + len(parameters) - 1))
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), parameters


@dataclass(frozen=True)
class Outcome:
    id: str
    outcome: str
    """``replayed``, ``discarded``, ``skipped`` or ``not_found``."""
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "outcome": self.outcome, "detail": self.detail}


class OperatorAction(Model):
    """What an operator did to some dead letters (written by ``DeadLetterConsole``). Each service subclasses this in
    its own models (table ``operator_actions``, created by messaging/sql/failures)."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True)
    operator = fields.CharField(max_length=64)
    action = fields.CharField(max_length=16)
    """``replay`` or ``discard``."""
    letter_ids = ArrayField(element_type="bigint")
    """The row ids of the letters acted on."""
    reason = fields.TextField()
    outcome = fields.JSONField()
    """Each letter's ``Outcome``, as a list of its ``as_dict()``."""

    class Meta:
        abstract = True


class DeadLetterConsole:
    def __init__(self, letters: DeadLetters, service: str) -> None:
        self.service = service
        self._table = letters.table

    def public_id(self, row_id: int) -> str:
        return f"{self.service}-{row_id}"

    def row_id(self, public_id: str) -> int | None:
        """The letter's row id; None for an id no letter of this service can have (a row id is a bigint)."""
        prefix, _, number = public_id.rpartition("-")
        if prefix != self.service or not (number.isascii() and number.isdigit()):
            return None
        row_id = int(number)
        return row_id if row_id <= MAX_ROW_ID else None

    async def find(self, filters: Filters, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The matching letters, newest failure first, and how many match."""
        where, parameters = filters.where()
        db = connections.get("default")
        count = len(parameters)
        rows = await db.execute_query_dict(
            f"SELECT {COLUMNS} FROM {self._table} {where} ORDER BY last_failed_at DESC, id DESC "
            f"LIMIT ${count + 1} OFFSET ${count + 2}",
            [*parameters, limit, offset],
        )
        total = await db.execute_query_dict(f"SELECT count(*) AS n FROM {self._table} {where}", parameters)
        return [self._item(row) for row in rows], total[0]["n"]

    async def replay_one(self, public_id: str, producer: AIOKafkaProducer, operator: str, reason: str) -> Outcome:
        outcome = await self._replay(public_id, producer)
        await self._audit(operator, "replay", [outcome], reason)
        return outcome

    async def replay_matching(
        self, filters: Filters, producer: AIOKafkaProducer, operator: str, reason: str
    ) -> tuple[list[Outcome], int]:
        """Replay the matching ``PENDING`` letters, oldest first; also how many matched in all."""
        pending = Filters(PENDING, filters.type, filters.q)
        where, parameters = pending.where()
        rows = await connections.get("default").execute_query_dict(
            f"SELECT id FROM {self._table} {where} ORDER BY id LIMIT {MAX_BULK_REPLAY + 1}", parameters
        )
        outcomes = [await self._replay(self.public_id(row["id"]), producer) for row in rows[:MAX_BULK_REPLAY]]
        if outcomes:
            await self._audit(operator, "replay", outcomes, reason)
        return outcomes, len(rows)

    async def discard(self, public_id: str, operator: str, reason: str) -> Outcome:
        row_id = self.row_id(public_id)
        outcome = Outcome(public_id, "not_found", "No such dead letter.")
        if row_id is not None:
            rows = await connections.get("default").execute_query_dict(
                f"UPDATE {self._table} SET state = '{DISCARDED}' WHERE id = $1 AND state = '{PENDING}' RETURNING id",
                [row_id],
            )
            if rows:
                outcome = Outcome(public_id, "discarded", "Discarded; it will not be replayed.")
            elif state := await self._state(row_id):
                outcome = Outcome(public_id, "skipped", f"Not discarded: it is {state}.")
        await self._audit(operator, "discard", [outcome], reason)
        return outcome

    async def actions(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        db = connections.get("default")
        rows = await db.execute_query_dict(
            "SELECT id, at, operator, action, letter_ids, reason, outcome FROM operator_actions "
            "ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2",
            [limit, offset],
        )
        total = await db.execute_query_dict("SELECT count(*) AS n FROM operator_actions")
        items = [
            {
                "id": self.public_id(row["id"]),
                "service": self.service,
                "at": _iso(row["at"]),
                "operator": row["operator"],
                "action": row["action"],
                "letters": [self.public_id(letter) for letter in row["letter_ids"]],
                "reason": row["reason"],
                "outcome": json.loads(row["outcome"]) if isinstance(row["outcome"], str) else row["outcome"],
            }
            for row in rows
        ]
        return items, total[0]["n"]

    async def _replay(self, public_id: str, producer: AIOKafkaProducer) -> Outcome:
        row_id = self.row_id(public_id)
        if row_id is None:
            return Outcome(public_id, "not_found", "No such dead letter.")
        return await in_own_context(self._replay_locked(public_id, row_id, producer))

    async def _replay_locked(self, public_id: str, row_id: int, producer: AIOKafkaProducer) -> Outcome:
        """The row's lock is waited for, not skipped: the relay that copies letters to ``<topic>.dlq`` holds it for
        a moment, and a second operator replaying the same letter then finds it ``REPLAYED``."""
        async with in_transaction() as conn:
            rows = await conn.execute_query_dict(
                f"SELECT source_topic, key, headers, payload, state, replays FROM {self._table} "
                "WHERE id = $1 FOR UPDATE",
                [row_id],
            )
            if not rows:
                return Outcome(public_id, "not_found", "No such dead letter.")
            letter = rows[0]
            if letter["state"] != PENDING:
                return Outcome(public_id, "skipped", f"Not replayed: it is {letter['state']}.")
            original = Delivery.headers_from(letter["headers"])
            replays = replays_of(original) + 1
            headers = [*((name, value) for name, value in original if name != REPLAYS_HEADER)]
            headers.append((REPLAYS_HEADER, str(replays).encode()))
            sent = await producer.send_and_wait(
                letter["source_topic"], letter["payload"], key=letter["key"], headers=headers
            )
            await conn.execute_query(
                f"UPDATE {self._table} SET state = '{REPLAYED}', replays = $2 WHERE id = $1", [row_id, replays]
            )
        return Outcome(public_id, "replayed", f"Sent to {sent.topic}/{sent.partition}/{sent.offset}.")

    async def _state(self, row_id: int) -> str | None:
        rows = await connections.get("default").execute_query_dict(
            f"SELECT state FROM {self._table} WHERE id = $1", [row_id]
        )
        return rows[0]["state"] if rows else None

    async def _audit(self, operator: str, action: str, outcomes: list[Outcome], reason: str) -> None:
        ids = [row_id for outcome in outcomes if (row_id := self.row_id(outcome.id)) is not None]
        await connections.get("default").execute_query(
            "INSERT INTO operator_actions (operator, action, letter_ids, reason, outcome) VALUES ($1, $2, $3, $4, $5)",
            [operator, action, ids, reason, json.dumps([outcome.as_dict() for outcome in outcomes])],
        )

    def _item(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.public_id(row["id"]),
            "service": self.service,
            "topic": row["source_topic"],
            "partition": row["source_partition"],
            "offset": row["source_offset"],
            "message_id": _text(row["message_id"]),
            "type": row["type"],
            "order_id": _text(row["order_id"]),
            "reason": row["reason"],
            "error": f"{row['error_class']}: {row['error_message']}",
            "attempts": row["attempts"],
            "first_failed_at": _iso(row["first_failed_at"]),
            "last_failed_at": _iso(row["last_failed_at"]),
            "state": row["state"],
            "replays": row["replays"],
            "payload": _readable(row["payload"]),
        }


def _readable(payload: bytes | None) -> Any:
    """The decoded JSON, or the bytes as text when they do not decode."""
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return payload.decode("utf-8", "backslashreplace")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime) -> str:
    return value.isoformat()
