"""The Orders service's settings: ``ORDERS_*`` variables plus the shared Kafka ones (see servicekit.settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from servicekit.settings import ServiceSettings

DEFAULT_PORT = 8001


def from_env(env: Mapping[str, str] = os.environ) -> ServiceSettings:
    return ServiceSettings.from_env("orders", DEFAULT_PORT, env)
