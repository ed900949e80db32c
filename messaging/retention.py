"""Retention cleanup that never holds long locks: delete old rows a bounded batch at a time."""

from __future__ import annotations

from tortoise import connections


async def delete_older_than(table: str, key: str, timestamp: str, seconds: float, batch: int = 1000) -> int:
    """Delete rows of ``table`` whose ``timestamp`` column is older than ``seconds``, ``batch`` rows per statement
    (each its own short transaction, so writers are never blocked for long); returns how many went."""
    total = 0
    while True:
        deleted, _ = await connections.get("default").execute_query(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
            f"WHERE {timestamp} < now() - make_interval(secs => $1) LIMIT $2)",
            [seconds, batch],
        )
        total += deleted
        if deleted < batch:
            return total
