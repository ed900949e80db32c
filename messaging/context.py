"""Running a database transaction so that its failure cannot outlive it in a long-lived task."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def in_own_context(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` in a copy of this task's context.

    Tortoise keeps the current transaction in a context variable, and leaves it set when beginning or releasing
    the transaction fails (a connection dying in a database restart). A loop that runs for the life of the
    process (a consumer, the relay) would then run every later transaction as a savepoint of that dead one, and
    retry forever: the chaos run caught exactly that. In a task of its own the variable dies with the task.
    """
    return await asyncio.create_task(work)
