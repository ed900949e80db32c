"""How big a chaos run is: the short form ``make test`` runs and the long form ``make chaos`` runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    name: str
    users: int
    """Users who open an account, some of them with less money than they will spend."""
    users_without_account: int
    """Users who only ever place orders: every one of their orders must fail with ACCOUNT_NOT_FOUND."""
    orders: int
    """The load goes on, once every fault has run, until at least this many orders were accepted."""
    rate: float
    """Requests per second the users send together (orders, deposits, repeats)."""
    concurrency: int
    """User sessions at work at once; each user's own requests are strictly one after another."""
    faults_per_kind: int
    fault_period: float
    """Every fault starts at a random moment within this many seconds after the warm-up."""
    warmup: float
    pairs: int
    """Commands a concurrent-pairs fault delivers twice at once, one copy to each payments instance."""
    republish: int
    """Handled commands a republish fault sends again under new message ids."""
    burst: int
    """Events sent again under new ids just before a kill, so that the killed process is in the middle of work."""
    pause_seconds: float
    special_orders: int = 2
    """Orders a flaky-handler or broken-handler fault places for its user."""
    payment_deadline: float = 20.0
    """ORDERS_PAYMENT_DEADLINE_SECONDS of the run: the broken user's orders are closed this long after they were
    placed (and any other order that waited that long for its payment)."""
    retry_budget: float = 10.0
    """CONSUMER_RETRY_BUDGET_SECONDS, as the services' default: a bad message is given up on after it."""
    max_attempts: int = 5
    """CONSUMER_MAX_ATTEMPTS, as the services' default."""
    grace: float = 5.0
    """After a fault ends, how long a 5xx is still blamed on it (clients reconnecting, pools refilling)."""
    drain_timeout: float = 60.0
    retry_deadline: float = 90.0
    """How long a user retries a request whose outcome is unknown (a stale Idempotency-Key claim lasts 60 s)."""
    max_poll_interval_ms: int = 8_000
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_000

    @property
    def stall_limit(self) -> float:
        """Seconds without a settlement that the monitor records as a stall: a bad message is given up on within
        the retry budget."""
        return self.retry_budget + 2

    @property
    def member_loss_stall(self) -> float:
        """The longest stall allowed while a consumer is out of its group: the coordinator evicts it after the
        session timeout, and the rejoin may wait for the rebalance timeout (the poll interval)."""
        return (self.session_timeout_ms + self.max_poll_interval_ms) / 1000 + self.grace

    @classmethod
    def short(cls, seed: int) -> ChaosConfig:
        """A few hundred orders and one fault of each kind: part of ``make test``."""
        return cls(
            seed=seed,
            name="short",
            users=40,
            users_without_account=4,
            orders=250,
            rate=8.0,
            concurrency=12,
            faults_per_kind=1,
            fault_period=40.0,
            warmup=5.0,
            pairs=300,
            republish=100,
            burst=60,
            pause_seconds=10.0,
        )

    @classmethod
    def long(cls, seed: int) -> ChaosConfig:
        """At least 100,000 orders and 20 faults of each kind: ``make chaos``."""
        return cls(
            seed=seed,
            name="long",
            users=2_000,
            users_without_account=100,
            orders=100_000,
            rate=100.0,
            concurrency=96,
            faults_per_kind=20,
            fault_period=1_500.0,
            warmup=10.0,
            pairs=1_000,
            republish=500,
            burst=100,
            pause_seconds=12.0,
            special_orders=5,
            payment_deadline=60.0,
        )
