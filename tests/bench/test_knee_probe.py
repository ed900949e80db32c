"""The saturation ramp's x1.5 steps only bracket the peak; finer steps between the last one that kept up and the
overloaded one find it, each from a drained pipeline."""

from __future__ import annotations

from typing import Any

from bench.phases import Bench, Plan
from bench.workload import Created


class StackOfCapacity(Bench):
    """Settles whatever it is offered up to ``capacity`` orders/s, and nothing more."""

    def __init__(self, capacity: float) -> None:
        self.plan = Plan()
        self.capacity = capacity
        self.events: list[str] = []

    async def _saturation_step(self, rate: float, created: Created) -> dict[str, Any]:
        self.events.append(f"step {rate:.0f}")
        return {"offered_per_s": rate, "errors": 0, "settled_per_s": min(rate, self.capacity)}

    async def _drain(self, created: Created) -> int:
        self.events.append("drain")
        return 0


def ramp(capacity: float, *rates: float) -> list[dict[str, Any]]:
    return [{"offered_per_s": rate, "errors": 0, "settled_per_s": min(rate, capacity)} for rate in rates]


async def test_the_knee_is_probed_between_the_last_step_that_kept_up_and_the_next() -> None:
    stack = StackOfCapacity(1500)

    probes = await stack._probe_the_knee(ramp(1500, 850, 1275, 1912, 2868), [])

    assert [step["offered_per_s"] for step in probes] == [1402, 1542, 1696]
    assert [step["settled_per_s"] for step in probes] == [1402, 1500, 1500]
    assert all(step["probe"] for step in probes)
    assert stack.events == ["drain", "step 1402", "drain", "step 1542", "drain", "step 1696"]


async def test_a_ramp_that_always_kept_up_is_not_probed() -> None:
    stack = StackOfCapacity(10_000)

    assert await stack._probe_the_knee(ramp(10_000, 850, 1275, 1912), []) == []
    assert stack.events == []
