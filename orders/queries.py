"""The Orders service's SQL for the per-order path and the figures: statements built with the composer
(``messaging.sql``), rows typed. Everything else goes through the ORM (``orders.models``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from messaging.sql import Sql


def insert_order(
    *, order_id: uuid.UUID, user_id: str, amount: Decimal, description: str | None, status: str, at: datetime, then: Sql
) -> Sql:
    """The order and ``then`` (its payment command's outbox row) in one statement: atomic on its own."""
    return Sql(
        "WITH new_order AS (INSERT INTO orders (id, user_id, amount, description, status, created_at, updated_at) "
        "VALUES ({order_id}, {user_id}, {amount}, {description}, {status}, {at}, {at})) {then}",
        order_id=order_id,
        user_id=user_id,
        amount=amount,
        description=description,
        status=status,
        at=at,
        then=then,
    )


class Settled(NamedTuple):
    """One row of ``settle``: an order it settled (``position`` None), or a result it refused (``position`` set:
    1-based, in the results given; ``known`` says whether the order exists)."""

    id: uuid.UUID
    status: str | None
    failure_reason: str | None
    settle_seconds: float | None
    position: int | None
    known: bool | None
    order_user_id: str | None
    order_amount: Decimal | None


def settle(
    *,
    order_ids: list[uuid.UUID],
    user_ids: list[str],
    amounts: list[Decimal],
    statuses: list[str],
    failures: list[str | None],
    channel: str,
) -> Sql:
    """Settle the PENDING ones of these orders with their results, refusing a result for an unknown order or for
    other money than the order's; NOTIFY ``channel`` of each change (delivered at commit). An order whose result
    came twice keeps the first one."""
    return Sql(
        "WITH outcome AS (SELECT * FROM unnest({order_ids}::uuid[], {user_ids}::text[], {amounts}::numeric[], "
        "{statuses}::text[], {failures}::text[]) "
        "WITH ORDINALITY AS outcome (order_id, user_id, amount, status, failure, position)), "
        "checked AS (SELECT outcome.*, orders.id IS NOT NULL AS known, "
        "orders.user_id = outcome.user_id AND orders.amount = outcome.amount AS matches, "
        "orders.user_id AS order_user_id, orders.amount AS order_amount "
        "FROM outcome LEFT JOIN orders ON orders.id = outcome.order_id), "
        "first AS (SELECT DISTINCT ON (order_id) * FROM checked WHERE matches ORDER BY order_id, position), "
        "settled AS (UPDATE orders SET status = first.status, failure_reason = first.failure, updated_at = now() "
        "FROM first WHERE orders.id = first.order_id AND orders.status = 'PENDING' "
        "RETURNING orders.id, orders.user_id, orders.status, orders.failure_reason, "
        "extract(epoch FROM now() - orders.created_at)::float8 AS settle_seconds, "
        "pg_notify({channel}, json_build_object('order_id', orders.id, 'user_id', orders.user_id)::text)) "
        "SELECT id, status, failure_reason, settle_seconds, NULL::bigint AS position, NULL::boolean AS known, "
        "NULL AS order_user_id, NULL::numeric AS order_amount FROM settled "
        "UNION ALL SELECT order_id, NULL, NULL, NULL, position, known, order_user_id, order_amount "
        "FROM checked WHERE NOT coalesce(matches, false)",
        order_ids=order_ids,
        user_ids=user_ids,
        amounts=amounts,
        statuses=statuses,
        failures=failures,
        channel=channel,
    )


class Overdue(NamedTuple):
    id: uuid.UUID
    user_id: str
    amount: Decimal


def mark_overdue_asked(*, deadline_seconds: float, limit: int) -> Sql:
    """Mark up to ``limit`` orders PENDING past the deadline (since created, or since last asked about) as asked
    about now, oldest first, skipping those another instance holds."""
    return Sql(
        "UPDATE orders SET expiry_requested_at = now() WHERE id IN (SELECT id FROM orders WHERE status = 'PENDING' "
        "AND coalesce(expiry_requested_at, created_at) < now() - make_interval(secs => {deadline_seconds}) "
        "ORDER BY coalesce(expiry_requested_at, created_at) LIMIT {limit} FOR UPDATE SKIP LOCKED) "
        "RETURNING id, user_id, amount",
        deadline_seconds=deadline_seconds,
        limit=limit,
    )


class Counted(NamedTuple):
    n: int


def count_overdue(*, deadline_seconds: float, bound: int) -> Sql:
    return Sql(
        "SELECT count(*) AS n FROM (SELECT FROM orders WHERE status = 'PENDING' "
        "AND created_at < now() - make_interval(secs => {deadline_seconds}) LIMIT {bound}) AS overdue",
        deadline_seconds=deadline_seconds,
        bound=bound,
    )


class SettledPer10s(NamedTuple):
    bucket: datetime
    settled: int


def settled_per_10s() -> Sql:
    """Orders settled in each 10 s of the last 5 minutes (index ``orders_settled_at``)."""
    return Sql(
        "SELECT to_timestamp(floor(extract(epoch FROM updated_at) / 10) * 10) AS bucket, count(*) AS settled "
        "FROM orders WHERE status <> 'PENDING' AND updated_at > now() - interval '5 minutes' "
        "GROUP BY bucket ORDER BY bucket"
    )
