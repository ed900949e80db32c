"""The chaos suite's settlement check: which gaps without a settled order it forgives, and which it reports."""

from __future__ import annotations

from tests.chaos.checks import Checks
from tests.chaos.config import ChaosConfig
from tests.chaos.faults import FaultWindow
from tests.chaos.findings import Findings
from tests.chaos.monitors import Stall

CONFIG = ChaosConfig.short(seed=1)
START = 1_000.0


def judged(stall: Stall, *windows: FaultWindow) -> int:
    findings = Findings()
    Checks(cluster=None, topics=None, findings=findings, awaiting_deadline="awaiting-").stalls(  # type: ignore[arg-type]
        [stall], list(windows), CONFIG
    )
    return findings.counts["settlement stalled"]


def stall(longest: float) -> Stall:
    return Stall(started=START + 2, ended=START + 2 + longest - CONFIG.stall_limit, longest=longest)


def test_a_stall_outside_any_fault_is_reported() -> None:
    assert judged(stall(CONFIG.stall_limit + 1)) == 1


def test_a_stall_during_a_poison_fault_is_reported() -> None:
    assert judged(stall(CONFIG.stall_limit + 1), FaultWindow("refused-values", "broker", START, START + 1)) == 1


def test_any_stall_while_the_broker_is_down_is_forgiven() -> None:
    assert judged(stall(60), FaultWindow("kill-broker", "broker", START, START + 60)) == 0


def test_a_paused_consumer_may_stall_settlement_until_its_group_has_evicted_it() -> None:
    pause = FaultWindow("pause-payments", "payments-b", START, START + 10)
    assert judged(stall(CONFIG.member_loss_stall), pause) == 0
    assert judged(stall(CONFIG.member_loss_stall + 1), pause) == 1


def test_a_member_loss_long_over_does_not_excuse_a_later_stall() -> None:
    kill = FaultWindow("kill-payments", "payments-a", START - 60, START - 60 + 4)
    assert judged(stall(CONFIG.stall_limit + 1), kill) == 1
