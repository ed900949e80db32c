"""Kafka client settings in one place, and the startup check that refuses unsafe ones.

Exactly-once money rests on three settings: the producer is idempotent and waits for all in-sync replicas,
and the consumer never commits an offset by itself (only after the database transaction committed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


class UnsafeKafkaSettings(RuntimeError):
    """Settings that could lose or duplicate money: the service refuses to start with them."""


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "gozon"
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    producer_overrides: tuple[tuple[str, Any], ...] = ()
    consumer_overrides: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_env(cls, client_id: str, env: Mapping[str, str]) -> KafkaSettings:
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", cls.bootstrap_servers),
            client_id=client_id,
            max_poll_interval_ms=int(env.get("KAFKA_MAX_POLL_INTERVAL_MS", cls.max_poll_interval_ms)),
            session_timeout_ms=int(env.get("KAFKA_SESSION_TIMEOUT_MS", cls.session_timeout_ms)),
            heartbeat_interval_ms=int(env.get("KAFKA_HEARTBEAT_INTERVAL_MS", cls.heartbeat_interval_ms)),
        )

    def producer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": f"{self.client_id}-producer",
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 0,
            "request_timeout_ms": 10_000,
        }
        return config | dict(self.producer_overrides)

    def consumer_config(self, group_id: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": f"{self.client_id}-consumer",
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            # A fetch returns as soon as data arrives anyway; a short long-poll only keeps the ops figures'
            # offset requests, which queue behind it on the same connection, from waiting half a second.
            "fetch_max_wait_ms": 100,
        }
        return config | dict(self.consumer_overrides)


def check_producer_config(config: Mapping[str, Any]) -> None:
    if config.get("enable_idempotence") is not True:
        raise UnsafeKafkaSettings("the producer must have enable_idempotence=True (retries could duplicate events)")
    if config.get("acks") not in ("all", -1):
        raise UnsafeKafkaSettings("the producer must use acks='all' (an acknowledged event could be lost)")


def check_consumer_config(config: Mapping[str, Any]) -> None:
    if config.get("enable_auto_commit") is not False:
        raise UnsafeKafkaSettings("the consumer must have enable_auto_commit=False (offsets before effects lose them)")


def make_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    config = settings.producer_config()
    check_producer_config(config)
    return AIOKafkaProducer(**config)


def make_consumer(settings: KafkaSettings, topic: str, group_id: str) -> AIOKafkaConsumer:
    config = settings.consumer_config(group_id)
    check_consumer_config(config)
    return AIOKafkaConsumer(topic, **config)
