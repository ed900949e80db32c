"""Every setting of the gateway, and of its Swagger UI server, read from the environment once, with local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    orders_urls: tuple[str, ...] = ("http://127.0.0.1:8001",)
    payments_urls: tuple[str, ...] = ("http://127.0.0.1:8002",)
    upstream_timeout: float = 10.0
    cors_origins: str = "*"
    max_connections: int = 64
    ws_send_timeout: float = 5.0
    operator_token: str = field(default="", repr=False)
    operator_name: str = "operator"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            host=env.get("GATEWAY_HOST", cls.host),
            port=int(env.get("GATEWAY_PORT", cls.port)),
            orders_urls=_url_list(env.get("ORDERS_URL"), cls.orders_urls),
            payments_urls=_url_list(env.get("PAYMENTS_URL"), cls.payments_urls),
            upstream_timeout=float(env.get("GATEWAY_UPSTREAM_TIMEOUT", cls.upstream_timeout)),
            cors_origins=env.get("GATEWAY_CORS_ORIGINS", cls.cors_origins),
            max_connections=int(env.get("GATEWAY_MAX_CONNECTIONS", cls.max_connections)),
            ws_send_timeout=float(env.get("GATEWAY_WS_SEND_TIMEOUT", cls.ws_send_timeout)),
            operator_token=env.get("GOZON_OPERATOR_TOKEN", ""),
            operator_name=env.get("GOZON_OPERATOR_NAME", cls.operator_name),
            log_level=env.get("LOG_LEVEL", cls.log_level),
        )


@dataclass(frozen=True)
class DocsSettings:
    """The Swagger UI server's (``python -m gateway.docs``)."""

    host: str = "127.0.0.1"
    port: int = 8082
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DocsSettings:
        return cls(
            host=env.get("SWAGGER_HOST", cls.host),
            port=int(env.get("SWAGGER_PORT", cls.port)),
            log_level=env.get("LOG_LEVEL", cls.log_level),
        )


def _url_list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return default
    return tuple(url.strip().rstrip("/") for url in value.split(",") if url.strip())
