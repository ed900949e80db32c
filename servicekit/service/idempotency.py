"""``Idempotency-Key`` for unsafe requests: the same key from the same user within 24 hours returns the first
response and has no second effect.

Two steps. First a short transaction claims the key (or finds it): a different request under the same key is a
422, a claim still in flight a 409, a finished one is replayed. Then the action runs, and its response is stored
in the action's own transaction, so the effect and the remembered response commit together or not at all. An
action that fails releases the claim; a claim whose process died is taken over after ``STALE_CLAIM_SECONDS``.

Each claim carries a token of its own, and a request completes or releases only the claim it holds: one that was
taken over (its request outlived the stale window) can neither store its response over its successor's nor delete
the successor's claim; it rolls its effect back and answers 409. The services' statement timeout keeps requests
far shorter than that window anyway (``ServiceSettings.server_settings``). Keys older than ``WINDOW_SECONDS`` are
deleted by the retention cleanup (``delete_expired``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sanic import response
from tortoise import connections, fields
from tortoise.models import Model

from messaging.retention import delete_older_than
from messaging.sql import Sql
from messaging.unit_of_work import Transactions, UnitOfWork
from servicekit.problems import BadRequest, Conflict, Unprocessable

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
WINDOW_SECONDS = 24 * 3600
STALE_CLAIM_SECONDS = 60


class IdempotencyKey(Model):
    """Each service subclasses this (table ``idempotency_keys``, created by servicekit/service/sql)."""

    class FixedCharField(fields.CharField):
        """``char(n)``, not ``varchar(n)``: a column whose every value has the same length."""

        @property
        def SQL_TYPE(self) -> str:  # type: ignore[override]
            return f"CHAR({self.max_length})"

    id = fields.BigIntField(primary_key=True)
    user_id = fields.CharField(max_length=64)
    key = fields.CharField(max_length=255)
    fingerprint = FixedCharField(max_length=64)
    """The request's SHA-256, in hex."""
    claim = fields.UUIDField(null=True)
    status_code = fields.SmallIntField(null=True)
    response = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


Reply = tuple[int, dict[str, Any]]
Action = Callable[[UnitOfWork], Awaitable[Reply]]
"""Statements that must commit together, run in the unit of work given; returns the response."""


@dataclass(frozen=True)
class OneStatement:
    """An action that is one statement, atomic on its own, and the response it earns. Without a key it runs alone,
    without BEGIN and COMMIT; with one, in the transaction that stores its response."""

    statement: Sql
    reply: Reply

    async def __call__(self, work: UnitOfWork) -> Reply:
        await work.execute(self.statement)
        return self.reply


def respond(outcome: Outcome) -> response.HTTPResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return response.json(outcome.body, status=outcome.status, headers=headers)


def parse_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not KEY_PATTERN.fullmatch(value):
        raise BadRequest(f"{HEADER} must be 1-255 visible ASCII characters.")
    return value


def fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """Identifies the request by its validated values, so 2.5 and "2.50" are the same request."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_once(
    model: type[IdempotencyKey],
    transactions: Transactions,
    *,
    user_id: str,
    key: str | None,
    request_fingerprint: str,
    action: Action | OneStatement,
) -> Outcome:
    """Run ``action`` in a unit of work, at most once per (user, key).

    The transaction runs in a task of its own (``Transactions.run``): Sanic serves every request of a keep-alive
    connection in one task, and a transaction cancelled or cut off while it was being released would otherwise
    leave Tortoise's transaction context set for all the connection's later requests (the chaos run saw one
    instance answer 503 "connection has been released back to the pool" for minutes after a database restart).
    """
    if key is None and isinstance(action, OneStatement):
        await transactions.run_alone(action.statement)
        return Outcome(*action.reply)
    if key is None:
        return Outcome(*await transactions.run(action))
    table = model._meta.db_table
    claim = uuid.uuid4()
    if replay := await _claim(table, user_id, key, request_fingerprint, claim):
        return replay
    held = Claim(table, user_id, key, claim)
    try:
        status, body = await transactions.run(functools.partial(_completing, action, held))
    except BaseException:
        await connections.get("default").execute_query(
            f"DELETE FROM {table} WHERE user_id = $1 AND key = $2 AND claim = $3 AND completed_at IS NULL",
            [user_id, key, claim],
        )
        raise
    return Outcome(status, body)


@dataclass(frozen=True)
class Claim:
    table: str
    user_id: str
    key: str
    token: uuid.UUID


async def _completing(action: Action | OneStatement, completes: Claim, work: UnitOfWork) -> Reply:
    """The action, and the stored response of the claim it ``completes``, in one unit of work. A claim that is no
    longer this request's rolls the action back."""
    status, body = await action(work)
    stored = await work.conn.execute_query_dict(
        f"UPDATE {completes.table} SET status_code = $1, response = $2, completed_at = now() "
        "WHERE user_id = $3 AND key = $4 AND claim = $5 AND completed_at IS NULL RETURNING id",
        [status, json.dumps(body), completes.user_id, completes.key, completes.token],
    )
    if not stored:
        raise Conflict(f"This request took too long: its {HEADER} was taken over by a retry of it.")
    return status, body


async def _claim(table: str, user_id: str, key: str, request_fingerprint: str, claim: uuid.UUID) -> Outcome | None:
    """Claim the key for this request under the token ``claim`` (None), or the outcome that answers it instead."""
    db = connections.get("default")
    claimed = await db.execute_query_dict(
        f"INSERT INTO {table} AS k (user_id, key, fingerprint, claim, created_at) VALUES ($1, $2, $3, $6, now()) "
        "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, claim = EXCLUDED.claim, "
        "created_at = now(), status_code = NULL, response = NULL, completed_at = NULL "
        "WHERE k.created_at < now() - make_interval(secs => $4) "
        "OR (k.completed_at IS NULL AND k.created_at < now() - make_interval(secs => $5)) RETURNING k.id",
        [user_id, key, request_fingerprint, WINDOW_SECONDS, STALE_CLAIM_SECONDS, claim],
    )
    if claimed:
        return None
    _, rows = await db.execute_query(
        f"SELECT fingerprint, status_code, response FROM {table} WHERE user_id = $1 AND key = $2", [user_id, key]
    )
    if not rows:
        raise Conflict(f"A request with this {HEADER} was just released; retry it.")
    existing = rows[0]
    if existing["fingerprint"] != request_fingerprint:
        raise Unprocessable(f"This {HEADER} was already used with a different request.")
    if existing["status_code"] is None:
        raise Conflict(f"A request with this {HEADER} is still in progress.")
    return Outcome(existing["status_code"], json.loads(existing["response"]), replayed=True)


async def delete_expired(model: type[IdempotencyKey]) -> int:
    """Retention: keys whose window has passed answer nothing any more; they go, paced like the outbox cleanup."""
    return await delete_older_than(model._meta.db_table, "id", "created_at", WINDOW_SECONDS)
