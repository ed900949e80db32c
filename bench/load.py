"""Load shapes: open loop (requests start on a fixed schedule whether or not earlier ones finished, so a slow
system cannot slow the load down) and closed loop (N workers, each sending its next request when the last one
answered: the most a system serves at that concurrency)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bench.http import ProtocolError

# How often the open loop wakes up to start the requests that have come due since.
SCHEDULER_TICK = 0.002
REQUEST_TIMEOUT = 30.0

Send = Callable[[int], Awaitable[bool]]


class Rejected(Exception):
    """A request answered with another status than the one it should have had."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` 0.99 for p99); None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{round(q * 100)}": _round(percentile(values, q)) for q in (0.5, 0.95, 0.99)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class LoadRecord:
    """What one load run did. Latencies are of successful requests only, in milliseconds; in an open loop they
    count from when the request was due, so time spent waiting for a free connection is included. ``due_s`` holds,
    for each latency, when that request was due in seconds since the start, so a window of the run can be cut out."""

    started_at: float = 0.0
    perf_start: float = 0.0
    ended_at: float = 0.0
    last_answer_at: float = 0.0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    due_s: list[float] = field(default_factory=list, repr=False)

    @property
    def in_flight(self) -> int:
        return self.sent - self.ok - self.errors

    @property
    def seconds(self) -> float:
        return self.ended_at - self.started_at

    @property
    def answered_per_s(self) -> float:
        """Successful answers per second, from the first request to the last answer."""
        elapsed = self.last_answer_at - self.started_at
        return self.ok / elapsed if elapsed > 0 else 0.0

    def latencies_due_between(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the requests that were due in [start, end), epoch seconds."""
        first, last = start - self.started_at, end - self.started_at
        return [ms for ms, due in zip(self.latencies_ms, self.due_s, strict=True) if first <= due < last]

    def status(self) -> str:
        return f"sent {self.sent} ok {self.ok} err {self.errors} in flight {self.in_flight}"

    async def measure(self, send: Send, index: int, due: float) -> None:
        """One request, counted and (when it succeeds) timed from ``due``, a ``time.perf_counter()`` instant."""
        self.sent += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                ok = await send(index)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ProtocolError,
            Rejected,
        ) as exc:
            self.errors_by_kind[str(exc) if isinstance(exc, Rejected) else type(exc).__name__] += 1
            ok = False
        self.last_answer_at = time.time()
        if ok:
            self.ok += 1
            self.latencies_ms.append((time.perf_counter() - due) * 1000)
            self.due_s.append(due - self.perf_start)
        else:
            self.errors += 1


async def open_loop(
    rate: float, seconds: float, send: Send, record: LoadRecord | None = None, stop: asyncio.Event | None = None
) -> LoadRecord:
    """Start ``rate`` requests a second for ``seconds`` (or until ``stop`` is set), evenly spaced; return once every
    one has answered."""
    record = record or LoadRecord()
    total = round(rate * seconds)
    pending: set[asyncio.Task[None]] = set()
    record.started_at = time.time()
    start = record.perf_start = time.perf_counter()
    launched = 0
    while launched < total and not (stop and stop.is_set()):
        due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
        for index in range(launched, due_now):
            task = asyncio.create_task(record.measure(send, index, start + index / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
        launched = due_now
        await asyncio.sleep(SCHEDULER_TICK)
    record.ended_at = time.time()
    if pending:
        await asyncio.wait(pending)
    return record


async def closed_loop(workers: int, seconds: float, send: Send, record: LoadRecord | None = None) -> LoadRecord:
    """``workers`` concurrent request loops for ``seconds``."""
    record = record or LoadRecord()
    deadline = time.perf_counter() + seconds
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await record.measure(send, next(counter), time.perf_counter())

    record.started_at = time.time()
    record.perf_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    record.ended_at = time.time()
    return record
