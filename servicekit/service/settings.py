"""Settings of a Gozon database-backed service (orders, payments), read from the environment once.

Each variable is prefixed with the service's name (``ORDERS_PORT``, ``PAYMENTS_DATABASE_URL``); Kafka and topic
settings are shared (``KAFKA_BOOTSTRAP_SERVERS``, ``PAYMENT_COMMANDS_TOPIC``...), and so are ``LOG_LEVEL`` and the
fault-injection specifications (``GOZON_FAULT_POINTS``, ``GOZON_HANDLER_FAULTS``: see messaging.faults). Defaults suit
``make run``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg

from messaging.kafka import KafkaSettings
from messaging.retries import RetryPolicy
from messaging.topics import Topics


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    database_url: str
    migration_database_url: str
    host: str
    port: int
    db_pool_size: int
    consumer_group: str
    relay_batch: int
    retention_seconds: float
    statement_timeout_seconds: float
    kafka: KafkaSettings
    topics: Topics
    retry_policy: RetryPolicy
    log_level: str = "INFO"
    fault_points: str = ""
    handler_faults: str = ""

    @classmethod
    def from_env(cls, name: str, default_port: int, env: Mapping[str, str] = os.environ) -> ServiceSettings:
        prefix = name.upper() + "_"

        def get(key: str, default: object) -> str:
            return env.get(prefix + key, str(default))

        return cls(
            name=name,
            database_url=get("DATABASE_URL", f"postgres://{name}:{name}-local-pw@127.0.0.1:5433/{name}"),
            migration_database_url=get(
                "MIGRATION_DATABASE_URL", f"postgres://{name}_owner:{name}-owner-local-pw@127.0.0.1:5433/{name}"
            ),
            host=get("HOST", "127.0.0.1"),
            port=int(get("PORT", default_port)),
            db_pool_size=int(get("DB_POOL_SIZE", 20)),
            consumer_group=get("CONSUMER_GROUP", name),
            relay_batch=int(get("RELAY_BATCH", 200)),
            retention_seconds=float(get("RETENTION_SECONDS", 7 * 86400)),
            statement_timeout_seconds=float(get("STATEMENT_TIMEOUT_SECONDS", 10)),
            kafka=KafkaSettings.from_env(name, env),
            topics=Topics.from_env(env),
            retry_policy=RetryPolicy.from_env(env),
            log_level=env.get("LOG_LEVEL", cls.log_level),
            fault_points=env.get("GOZON_FAULT_POINTS", cls.fault_points),
            handler_faults=env.get("GOZON_HANDLER_FAULTS", cls.handler_faults),
        )

    def tortoise_config(self, models: str) -> dict[str, object]:
        return {
            "connections": {
                "default": {
                    "engine": "tortoise.backends.asyncpg",
                    "credentials": _credentials(self.database_url)
                    | {
                        "minsize": 1,
                        "maxsize": self.db_pool_size,
                        "reset": release_connection,
                        "server_settings": self.server_settings(),
                    },
                }
            },
            "apps": {self.name: {"models": [models], "default_connection": "default"}},
            "use_tz": True,
            "timezone": "UTC",
        }

    def server_settings(self) -> dict[str, str]:
        """No statement, and no transaction left idle, outlives the timeout: a request can never run longer than an
        Idempotency-Key claim stays fresh (``servicekit.service.idempotency.STALE_CLAIM_SECONDS``), so a claim is
        taken over only from a request that is gone."""
        milliseconds = str(int(self.statement_timeout_seconds * 1000))
        return {"statement_timeout": milliseconds, "idle_in_transaction_session_timeout": milliseconds}


async def release_connection(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs on its way back. asyncpg's default also runs ``RESET ALL; UNLISTEN *; ...``,
    a round trip per release for session state we never create (advisory locks are transaction-level, LISTEN has
    connections of its own, settings are ``SET LOCAL``).

    It never raises: a connection that cannot roll back (the server is going away) is terminated instead, and the
    pool opens a new one on the next acquire. If the release raised, Tortoise would skip restoring the task's
    transaction context, and that task's later transactions would run on a connection already back in the pool."""
    if conn.is_in_transaction():
        try:
            await conn.execute("ROLLBACK")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()


def _credentials(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/"),
    }
