"""Which handler failures are retried for as long as it takes, and which a bounded number of times."""

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError
from asyncpg.exceptions import _base
from tortoise.exceptions import IntegrityError, OperationalError

from messaging.faults import InjectedFault
from messaging.transient import is_transient


def wrapped(exc: BaseException) -> OperationalError:
    """As Tortoise raises a driver's error: its own exception, raised from the driver's."""
    try:
        raise OperationalError(exc) from exc
    except OperationalError as wrapper:
        return wrapper


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        KafkaConnectionError(),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("pool is closing"),
        wrapped(asyncpg.SerializationError("could not serialize access")),
    ],
    ids=type,
)
def test_the_infrastructure_failing_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.NumericValueOutOfRangeError("numeric field overflow"),
        asyncpg.CheckViolationError("violates check constraint"),
        asyncpg.UniqueViolationError("duplicate key value"),
        _base.DataError("invalid input for query argument $1"),
        wrapped(asyncpg.NumericValueOutOfRangeError("numeric field overflow")),
        IntegrityError("duplicate key value"),
        KeyError("a bug"),
        InjectedFault("handler fault"),
    ],
    ids=type,
)
def test_the_message_or_the_code_failing_is_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_cycle_of_causes_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert not is_transient(first)
