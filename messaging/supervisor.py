"""Background work that lives as long as the app: each loop is started under a name, and one that dies of an
unexpected exception is logged once, with its stack trace, and started again after a backoff. While a loop is down
its name is in ``down()``, which ``/ready`` reports: an instance that still takes orders while nothing publishes them
says so. Expected trouble (the database or Kafka away) never reaches here: the loops wait it out themselves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from messaging import metrics
from messaging.backoff import Backoff

log = logging.getLogger("messaging.supervisor")

RUNNING, RESTARTING, FINISHED = "running", "restarting", "finished"
# A loop that ran this long before it died starts again after the shortest backoff.
HEALTHY_SECONDS = 60.0


@dataclass
class TaskState:
    state: str = RUNNING
    restarts: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    def __init__(self, service: str, initial_backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self._service = service
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, TaskState] = {}

    def start(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` until it returns (then it is finished) or the supervisor stops; restart it when it raises."""
        self.states[name] = TaskState()
        metrics.TASK_RESTARTS.labels(self._service, name)
        self._tasks[name] = asyncio.create_task(self._supervise(name, work), name=name)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def down(self) -> dict[str, str]:
        """The loops that are not running now, and why."""
        return {
            name: f"restarting after {state.last_error}"
            for name, state in self.states.items()
            if state.state == RESTARTING
        }

    def restarts(self) -> dict[str, int]:
        return {name: state.restarts for name, state in self.states.items()}

    async def _supervise(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        state = self.states[name]
        backoff = Backoff(self._initial_backoff, self._max_backoff)
        while True:
            started = time.monotonic()
            try:
                await work()
            except Exception as exc:
                if time.monotonic() - started > HEALTHY_SECONDS:
                    backoff.reset()
                delay = backoff.next()
                state.state, state.last_error = RESTARTING, f"{type(exc).__name__}: {exc}"
                state.restarts += 1
                metrics.TASK_RESTARTS.labels(self._service, name).inc()
                log.exception("background task %s died; restarting it in %.1fs", name, delay)
                await asyncio.sleep(delay)
                state.state = RUNNING
            else:
                state.state = FINISHED
                return
