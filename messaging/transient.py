"""Which failures of a handler are the world's (the database or Kafka away, a conflict the database asks to retry)
and which are the message's own or the code's. The first kind is retried for as long as it takes: retrying the same
message later will work, and dead-lettering it would only move traffic aside. The second kind is retried a bounded
number of times, then dead-lettered, so that one message can never stop the others."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError
from tortoise.exceptions import DBConnectionError, TransactionManagementError

# SQLSTATE classes and codes that say "try again": connection exceptions (08), insufficient resources (53, such as
# too many connections), and operator intervention (57: admin or crash shutdown, cannot connect now, and 57014, a
# statement cancelled by its timeout).
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
"""Serialization failure, deadlock, lock not available: the database asks to run the transaction again."""

TRANSIENT_TYPES = (
    OSError,
    TimeoutError,
    KafkaError,
    DBConnectionError,
    # Tortoise raises this about a transaction whose connection died under it.
    TransactionManagementError,
)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc``, or anything it was raised from, is a failure of the infrastructure rather than of the
    message or the code (the ORM wraps the driver's errors, so the whole chain is looked at)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_TYPES):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_CLASSES)
    # asyncpg's own interface errors are about the connection (closed, released, pool closing, another operation in
    # progress), except the ones about the values a query was given (they are ValueErrors too), which are the
    # message's.
    return isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ValueError)
