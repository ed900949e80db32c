"""The Payments service's settings: ``PAYMENTS_*`` variables plus the shared Kafka ones
(see ``servicekit.service.settings``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from servicekit.service.settings import ServiceSettings

DEFAULT_PORT = 8002


def from_env(env: Mapping[str, str] = os.environ) -> ServiceSettings:
    return ServiceSettings.from_env("payments", DEFAULT_PORT, env)
