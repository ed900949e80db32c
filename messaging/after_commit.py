"""Work that must happen only once a transaction has committed, such as counting what it did.

A handler that runs inside the consumer's transaction cannot know whether that transaction will commit: a batch can
still be rolled back and handled again one message at a time. So it defers the work here, and whoever opened the
transaction runs what was deferred after the commit, or drops it with a rollback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

Deferred = Callable[[], None]

_deferred: ContextVar[list[Deferred] | None] = ContextVar("after_commit", default=None)


def after_commit(work: Deferred) -> None:
    """Run ``work`` after the enclosing ``collected()`` transaction commits; at once when there is none."""
    pending = _deferred.get()
    if pending is None:
        work()
    else:
        pending.append(work)


@contextlib.contextmanager
def collected() -> Iterator[list[Deferred]]:
    """Collect what the code inside defers; the caller runs it (``run``) once its transaction has committed."""
    pending: list[Deferred] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


def run(pending: list[Deferred]) -> None:
    for work in pending:
        work()
    pending.clear()
