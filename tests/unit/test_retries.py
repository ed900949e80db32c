"""The retry schedule and the fault specifications the harness arms."""

from collections.abc import Iterator

import pytest

from messaging import faults
from messaging.retries import RetryPolicy
from servicekit.service.settings import ServiceSettings


def test_the_waits_double_and_add_up_to_the_budget() -> None:
    policy = RetryPolicy(max_attempts=5, budget_seconds=10.0)
    waits = [policy.delay_after(attempt) for attempt in range(1, policy.max_attempts)]

    assert waits == pytest.approx([10 / 15, 20 / 15, 40 / 15, 80 / 15])
    assert sum(waits) == pytest.approx(10.0)


def test_the_policy_comes_from_the_environment() -> None:
    policy = RetryPolicy.from_env({"CONSUMER_MAX_ATTEMPTS": "3", "CONSUMER_RETRY_BUDGET_SECONDS": "1.5"})
    assert (policy.max_attempts, policy.budget_seconds) == (3, 1.5)
    assert RetryPolicy.from_env({"CONSUMER_MAX_ATTEMPTS": "0"}).max_attempts == 1


def test_fault_points_parse_into_kills_and_raises() -> None:
    points = faults._parse_points("relay.after_ack=0.05, relay.before_batch=raise:2,loop=raise")
    assert points == {
        "relay.after_ack": faults.Point(kill_probability=0.05),
        "relay.before_batch": faults.Point(raises=2),
        "loop": faults.Point(raises=faults.ALWAYS),
    }


def test_handler_faults_parse_by_event_type_and_user() -> None:
    assert faults._parse_handler_faults("payment.requested:alice=2,payment.failed:bob=always") == {
        ("payment.requested", "alice"): 2,
        ("payment.failed", "bob"): faults.ALWAYS,
    }


def test_a_handler_fault_fails_its_first_attempts_for_the_users_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_HANDLER_FAULTS", faults._parse_handler_faults("payment.requested:broken-*=2"))

    for attempt in (1, 2):
        with pytest.raises(faults.InjectedFault):
            faults.before_handling("payment.requested", "broken-7", attempt)
    faults.before_handling("payment.requested", "broken-7", 3)
    faults.before_handling("payment.requested", "healthy", 1)
    faults.before_handling("payment.succeeded", "broken-7", 1)


@pytest.fixture
def disarmed_afterwards() -> Iterator[None]:
    yield
    faults.configure()


@pytest.mark.usefixtures("disarmed_afterwards")
def test_a_service_arms_the_faults_its_settings_name_and_nothing_else() -> None:
    config = ServiceSettings.from_env(
        "orders", 8001, {"GOZON_FAULT_POINTS": "loop=raise:1", "GOZON_HANDLER_FAULTS": "payment.requested:alice=1"}
    )
    faults.point("loop")

    faults.configure(config.fault_points, config.handler_faults)

    with pytest.raises(faults.InjectedFault):
        faults.point("loop")
    faults.point("loop")
    with pytest.raises(faults.InjectedFault):
        faults.before_handling("payment.requested", "alice", 1)
    faults.configure()
    faults.before_handling("payment.requested", "alice", 1)
    assert ServiceSettings.from_env("orders", 8001, {}).fault_points == ""
