"""One dedicated PostgreSQL ``LISTEN`` connection that survives database restarts.

``NOTIFY`` is delivered only when the notifying transaction commits, so whatever a listener hears about is
committed. While the connection is down nothing is heard, so after every (re)connect ``on_reconnect`` runs: the
owner catches up on what it may have missed (the relay looks for rows, the websocket hub re-sends snapshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial

import asyncpg

from messaging.backoff import Backoff

log = logging.getLogger("messaging.listen")

Callback = Callable[[str], None]


class PgListener:
    def __init__(
        self,
        dsn: str,
        channels: dict[str, Callback],
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        health_interval: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._channels = channels
        self._on_reconnect = on_reconnect
        self._health_interval = health_interval
        self.connected = asyncio.Event()
        # Named so an operator (or a test) can find this instance's connection in pg_stat_activity.
        self.application_name = f"listen-{os.getpid()}"
        self.reconnects = 0

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff whenever the connection is lost."""
        backoff = Backoff()
        first = True
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, server_settings={"application_name": self.application_name})
            except (OSError, asyncpg.PostgresError) as exc:
                delay = backoff.next()
                log.warning("listen connection failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            try:
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                conn.add_termination_listener(partial(_mark_lost, lost))
                for channel, callback in self._channels.items():
                    await conn.add_listener(channel, self._deliver(callback))
                self.connected.set()
                backoff.reset()
                if not first:
                    self.reconnects += 1
                    log.info("listen connection re-established on %s", ", ".join(self._channels))
                if self._on_reconnect:
                    await self._on_reconnect()
                first = False
                await self._watch(conn, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listen connection lost: %s", exc)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(backoff.next())

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Future[None]) -> None:
        """Return when the connection is gone; a cheap query notices a dead peer that never said goodbye."""
        while not lost.done():
            # asyncio.timeout, not wait_for, which on Python 3.11 can lose a cancellation (see OutboxRelay.run).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):
                    await asyncio.shield(lost)
            if not lost.done():
                await conn.fetchval("SELECT 1", timeout=self._health_interval)

    @staticmethod
    def _deliver(callback: Callback) -> Callable[..., None]:
        def on_notification(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        return on_notification


def _mark_lost(lost: asyncio.Future[None], _conn: object) -> None:
    if not lost.done():
        lost.set_result(None)
