"""The Orders service's settings: ``ORDERS_*`` variables plus the shared Kafka ones
(see ``servicekit.service.settings``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.service.settings import ServiceSettings

DEFAULT_PORT = 8001


def from_env(env: Mapping[str, str] = os.environ) -> ServiceSettings:
    return ServiceSettings.from_env("orders", DEFAULT_PORT, env)


@dataclass(frozen=True)
class LiveLimits:
    """Limits of the live-status WebSocket (``orders.live``)."""

    queue_size: int = 64
    sockets_per_user: int = 5
    sockets_per_instance: int = 2000


def live_limits(env: Mapping[str, str] = os.environ) -> LiveLimits:
    """Limits of the live-status WebSocket, so one client cannot hurt the others."""
    defaults = LiveLimits()
    return LiveLimits(
        queue_size=int(env.get("ORDERS_WS_QUEUE_SIZE", defaults.queue_size)),
        sockets_per_user=int(env.get("ORDERS_WS_SOCKETS_PER_USER", defaults.sockets_per_user)),
        sockets_per_instance=int(env.get("ORDERS_WS_SOCKETS_PER_INSTANCE", defaults.sockets_per_instance)),
    )


def payment_deadline_seconds(env: Mapping[str, str] = os.environ) -> float:
    """How long an order may stay PENDING before Orders asks Payments to close it (``PAYMENT_TIMEOUT``)."""
    return float(env.get("ORDERS_PAYMENT_DEADLINE_SECONDS", 120))
