"""Versioned schema migrations: ordered ``NNNN_name.sql`` files, each applied once, in its own transaction.

A service's schema comes from the shared parts it uses (the outbox, the inbox, idempotency keys) and then its
own ``migrations/``. ``python -m stack.migrate [orders|payments]`` applies them to the database named by that
service's settings; the services' containers run it before they start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from pathlib import Path

import asyncpg

log = logging.getLogger("stack.migrate")

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "orders": ["messaging/sql/outbox", "messaging/sql/failures", "servicekit/sql", "orders/migrations"],
    "payments": [
        "messaging/sql/outbox",
        "messaging/sql/inbox",
        "messaging/sql/failures",
        "servicekit/sql",
        "payments/migrations",
    ],
}
# Two instances starting at once must not both apply the same file.
MIGRATION_LOCK = 7_360_001


def migration_files(service: str) -> list[tuple[str, Path]]:
    """(version, file) pairs in the order they apply; the version names the source, e.g. ``orders/0001_orders``."""
    files = []
    for source in SOURCES[service]:
        for file in sorted((ROOT / source).glob("[0-9][0-9][0-9][0-9]_*.sql")):
            files.append((f"{source.split('/')[-1]}/{file.stem}", file))
    return files


async def migrate(dsn: str, files: list[tuple[str, Path]]) -> list[str]:
    """Apply the files not applied yet; returns the versions applied now."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, file in files:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(file.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
            log.info("applied migration %s", version)
    finally:
        await conn.close()
    return applied_now


def main(services: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for service in services or list(SOURCES):
        settings = importlib.import_module(f"{service}.settings").from_env()
        asyncio.run(migrate(settings.database_url, migration_files(service)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
