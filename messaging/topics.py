"""Topic names, read once from the environment a settings module hands over; every topic has a ``<name>.dlq``
dead-letter twin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topics:
    payment_commands: str = "gozon.payment-commands"
    payment_results: str = "gozon.payment-results"
    partitions: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        return cls(
            payment_commands=env.get("PAYMENT_COMMANDS_TOPIC", cls.payment_commands),
            payment_results=env.get("PAYMENT_RESULTS_TOPIC", cls.payment_results),
            partitions=int(env.get("KAFKA_TOPIC_PARTITIONS", cls.partitions)),
        )

    def all(self) -> list[str]:
        main = [self.payment_commands, self.payment_results]
        return main + [dead_letter_topic(topic) for topic in main]


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX
