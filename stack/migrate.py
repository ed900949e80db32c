"""Versioned schema migrations: ordered ``NNNN_name.sql`` files, each applied once, in its own transaction.

A service's schema comes from the shared parts it uses (the outbox, the inbox, idempotency keys) and then its
own ``migrations/``. ``python -m stack.migrate [orders|payments]`` applies them as the database's owner role
(``<SERVICE>_MIGRATION_DATABASE_URL``), then grants the service's own role (the one in ``<SERVICE>_DATABASE_URL``)
what it needs to read and write rows and nothing more: no DDL, and no DELETE of the money records. The services'
containers run it before they start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from pathlib import Path

import asyncpg

from stack.postgres import Login

log = logging.getLogger("stack.migrate")

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "orders": ["messaging/sql/outbox", "messaging/sql/failures", "servicekit/service/sql", "orders/migrations"],
    "payments": [
        "messaging/sql/outbox",
        "messaging/sql/inbox",
        "messaging/sql/failures",
        "servicekit/service/sql",
        "payments/migrations",
    ],
}
# Rows that record money or an operator's action are never deleted, so the service's role cannot delete them.
APPEND_ONLY = {
    "orders": ("operator_actions",),
    "payments": ("payments", "deposits", "operator_actions"),
}
GRANTS = (ROOT / "db" / "service_grants.sql").read_text()
# Two instances starting at once must not both apply the same file.
MIGRATION_LOCK = 7_360_001


def migration_files(service: str) -> list[tuple[str, Path]]:
    """(version, file) pairs in the order they apply; the version names the source, e.g. ``orders/0001_orders``."""
    files = []
    for source in SOURCES[service]:
        for file in sorted((ROOT / source).glob("[0-9][0-9][0-9][0-9]_*.sql")):
            files.append((f"{source.split('/')[-1]}/{file.stem}", file))
    return files


async def migrate(dsn: str, service: str, *, service_role: str | None) -> list[str]:
    """Apply the service's files not applied yet, then grant ``service_role`` its rights (None: no role to grant,
    for a database that only its owner uses); returns the versions applied now."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, file in migration_files(service):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(file.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
            log.info("applied migration %s", version)
        if service_role is not None:
            await grant(conn, service_role, APPEND_ONLY[service])
    finally:
        await conn.close()
    return applied_now


async def grant(conn: asyncpg.Connection, role: str, append_only: tuple[str, ...]) -> None:
    """Rights on every table and sequence, and on those that later migrations create; then DELETE taken back from
    the append-only tables. Applied after every migration run, so a new table is covered at once."""
    quoted = quote_identifier(role)
    async with conn.transaction():
        await conn.execute(GRANTS.format(role=quoted))
        for table in append_only:
            await conn.execute(f"REVOKE DELETE, TRUNCATE ON {quote_identifier(table)} FROM {quoted}")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def main(services: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for service in services or list(SOURCES):
        settings = importlib.import_module(f"{service}.settings").from_env()
        service_role = Login.from_url(settings.database_url).role
        asyncio.run(migrate(settings.migration_database_url, service, service_role=service_role))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
