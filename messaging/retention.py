"""Retention cleanup that never holds long locks: delete old rows a bounded batch at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tortoise import connections

# BATCH_ROWS every PAUSE_SECONDS, whatever the backlog: a steady pace, so the writers' cost stays bounded. Rows
# come due a retention period after they were written, so the cleanup falls behind only while the traffic of a
# week ago ran faster than this pace, and catches up once it eased. Faster costs the writers: every deleted row
# writes WAL, mostly full-page images (compressed: stack/postgres.py), and an insert that commits behind a batch
# flushes that WAL too. At the same pace, fewer and larger batches cost the writers least, since they queue behind
# fewer commits. The bench's retention phase measures both what this pace costs the writers and what an unpaced
# cleanup would (bench/README.md, "Retention"; python -m bench.run --only retention).
BATCH_ROWS = 1_000
PAUSE_SECONDS = 0.8
EARLIEST = datetime.min.replace(tzinfo=UTC)


async def delete_older_than(
    table: str, key: str, timestamp: str, seconds: float, batch: int = BATCH_ROWS, pause: float = PAUSE_SECONDS
) -> int:
    """Delete rows of ``table`` whose ``timestamp`` column is older than ``seconds``, ``batch`` rows per statement
    (each its own short transaction), pausing between batches so writers barely notice; returns how many went.

    Oldest first, each batch starting where the last one ended, through the index on ``timestamp``: a batch reads
    its own rows and no more, however many earlier batches deleted (without ``ORDER BY``, the planner scans the
    table whenever most rows are old, and every batch reads again the pages the earlier ones emptied; without the
    lower bound, every batch steps again over the index entries of the rows deleted before it)."""
    total, since = 0, EARLIEST
    while True:
        _, rows = await connections.get("default").execute_query(
            f"WITH gone AS (DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
            f"WHERE {timestamp} >= $3 AND {timestamp} < now() - make_interval(secs => $1) "
            f"ORDER BY {timestamp} LIMIT $2) RETURNING {timestamp}) "
            f"SELECT count(*) AS deleted, max({timestamp}) AS newest FROM gone",
            [seconds, batch, since],
        )
        total += rows[0]["deleted"]
        if rows[0]["deleted"] < batch:
            return total
        since = rows[0]["newest"]
        await asyncio.sleep(pause)
