"""The messaging series each instance reports at ``GET /metrics`` (Prometheus text, ``prometheus-client``).

Counters move after the transaction whose effect they count has committed: a batch rolled back and handled again
is counted once. Gauges that cost a query (the outbox backlog, the consumer lag) are set when they are scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

OUTBOX_PENDING = Gauge("gozon_outbox_pending", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "gozon_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 when none).", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "gozon_outbox_published_total", "Outbox rows published and acknowledged by Kafka.", ["service", "topic"]
)
MESSAGES_PROCESSED = Counter(
    "gozon_messages_processed_total",
    "Messages the consumer is done with: applied, dead-lettered or set aside for a bounded retry.",
    ["service", "topic"],
)
MESSAGES_RETRIED = Counter(
    "gozon_messages_retried_total",
    "Failed attempts at a message that were retried: in place (transient) or set aside for a bounded retry.",
    ["service", "topic"],
)
DEAD_LETTERS = Counter("gozon_dead_letters_total", "Messages that became dead letters.", ["service", "topic"])
INBOX_DUPLICATES = Counter(
    "gozon_inbox_duplicates_total", "Deliveries the inbox had already seen: redeliveries and replays.", ["service"]
)
TASK_RESTARTS = Counter(
    "gozon_background_task_restarts_total",
    "Background loops restarted by their supervisor after dying of an unexpected exception.",
    ["service", "task"],
)


def report_from_zero(service: str, topics: list[str], *, inbox: bool) -> None:
    """Start this service's counters at 0, so that a rule like ``increase(gozon_dead_letters_total[5m]) > 0`` sees
    the first dead letter too: a series that appears with its first increment has no earlier sample to rise from."""
    for topic in topics:
        for counter in (MESSAGES_PROCESSED, MESSAGES_RETRIED, DEAD_LETTERS):
            counter.labels(service, topic)
    if inbox:
        INBOX_DUPLICATES.labels(service)


class ConsumerLag(Collector):
    """``gozon_consumer_lag``: the partitions assigned here when it was last measured, and only those (a partition
    that moved to another instance is that instance's to report)."""

    def __init__(self) -> None:
        self._lag: dict[str, dict[tuple[str, int], int]] = {}

    def set(self, service: str, lag: dict[tuple[str, int], int]) -> None:
        self._lag[service] = dict(lag)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gozon_consumer_lag",
            "Messages behind the end of each partition assigned here.",
            labels=["service", "topic", "partition"],
        )
        for service, partitions in self._lag.items():
            for (topic, partition), behind in sorted(partitions.items()):
                family.add_metric([service, topic, str(partition)], behind)
        yield family


CONSUMER_LAG = ConsumerLag()
REGISTRY.register(CONSUMER_LAG)
