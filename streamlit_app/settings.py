"""Every setting of the UI, read from the environment: where the gateway is, and the operator token ``make run``
hands the UI. Read again on each use, so a changed environment (the tests point the UI elsewhere) takes effect."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Settings:
    gateway_url: str = DEFAULT_GATEWAY_URL
    """The gateway's REST API (``GATEWAY_URL``)."""
    gateway_ws_url: str | None = None
    """Where the live order socket is opened (``GATEWAY_WS_URL``); None: the REST URL with ws:// (wss://)."""
    operator_token: str | None = field(default=None, repr=False)
    """``GOZON_OPERATOR_TOKEN``; None: the operator types it in the session."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            gateway_url=env.get("GATEWAY_URL", cls.gateway_url),
            gateway_ws_url=env.get("GATEWAY_WS_URL") or None,
            operator_token=env.get("GOZON_OPERATOR_TOKEN") or None,
        )
