"""``python -m bench.sockets``: the clients of the live-status benchmark, one asyncio process of their own, so
their CPU is measured apart from the load generator's and cannot slow it down.

Reads one JSON line from stdin, ``{"url": ..., "users": [...], "per_user": n}``, opens ``per_user`` sockets to
``GET /ws/orders`` for every user (``X-User-Id``), waits for every socket's first message (the snapshot) and prints
one JSON line. Then it follows commands on stdin, one per line: ``count`` prints how many messages have arrived
so far; ``stop <path>`` closes every socket, writes every message received to ``<path>`` and exits.

Each message is kept as it came, with ``time.time()`` taken as it came off the socket: parsing is left to the
parent, after the run, so the clients do as little as possible while they are measured.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
import websockets
from websockets.asyncio.client import ClientConnection

from bench import procs
from bench.load import summary_ms

# Handshakes in flight at once: each one costs the gateway an upstream handshake and Orders a snapshot query.
CONNECTING_AT_ONCE = 32
OPEN_TIMEOUT = 60.0
# Descriptors beyond the sockets: the interpreter, stdio, the event loop.
SPARE_FILES = 64


@dataclass(eq=False)
class Socket:
    index: int
    user: str
    ws: ClientConnection | None = None
    error: str | None = None
    close_code: int | None = None
    closed_by_us: bool = False


@dataclass
class Clients:
    url: str
    sockets: list[Socket]
    receipts: list[tuple[int, float, str]] = field(default_factory=list)
    handshake_ms: list[float] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def for_users(cls, url: str, users: list[str], per_user: int) -> Clients:
        sockets = [Socket(index, users[index % len(users)]) for index in range(len(users) * per_user)]
        return cls(url, sockets)

    async def open_all(self) -> dict[str, Any]:
        """Every socket open and its snapshot received (or failed); what it took."""
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        started = time.perf_counter()
        ready = [asyncio.get_running_loop().create_future() for _ in self.sockets]
        self.tasks = [
            asyncio.create_task(self._hold(s, gate, done)) for s, done in zip(self.sockets, ready, strict=True)
        ]
        await asyncio.wait(ready)
        failed = [s for s in self.sockets if s.ws is None]
        return {
            "opened": len(self.sockets) - len(failed),
            "failed": len(failed),
            "errors": sorted({s.error for s in failed if s.error})[:5],
            "seconds": round(time.perf_counter() - started, 2),
            "handshake_ms": summary_ms(self.handshake_ms),
        }

    async def _hold(self, socket: Socket, gate: asyncio.Semaphore, ready: asyncio.Future[None]) -> None:
        try:
            async with gate:
                ws = await self._open(socket)
        finally:
            ready.set_result(None)
        if ws is None:
            return
        try:
            async for message in ws:
                self.receipts.append((socket.index, time.time(), str(message)))
        except websockets.ConnectionClosed:
            pass
        socket.close_code = ws.close_code

    async def _open(self, socket: Socket) -> ClientConnection | None:
        """The socket, open, with its snapshot received; None (and the error noted) when that failed."""
        started = time.perf_counter()
        try:
            ws = await websockets.connect(
                self.url,
                additional_headers={"X-User-Id": socket.user},
                compression=None,
                ping_interval=None,
                open_timeout=OPEN_TIMEOUT,
                max_queue=None,
            )
            snapshot = await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT)
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            socket.error = f"{type(exc).__name__}: {exc}"
            return None
        self.receipts.append((socket.index, time.time(), str(snapshot)))
        self.handshake_ms.append((time.perf_counter() - started) * 1000)
        socket.ws = ws
        return ws

    async def close_all(self) -> None:
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def close(socket: Socket) -> None:
            async with gate:
                if socket.ws is not None and socket.close_code is None:
                    socket.closed_by_us = True
                    await socket.ws.close()

        await asyncio.gather(*(close(socket) for socket in self.sockets))
        await asyncio.gather(*self.tasks)

    def report(self) -> dict[str, Any]:
        closed_early = Counter(str(s.close_code) for s in self.sockets if s.ws is not None and not s.closed_by_us)
        return {
            "users": [socket.user for socket in self.sockets],
            "opened": [socket.ws is not None for socket in self.sockets],
            "closed_early": dict(closed_early),
            "receipts": self.receipts,
        }


async def read_lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    stdin = await read_lines()
    setup = json.loads(await stdin.readline())
    procs.raise_fd_limit(len(setup["users"]) * setup["per_user"] + SPARE_FILES)
    clients = Clients.for_users(setup["url"], setup["users"], setup["per_user"])
    say(await clients.open_all())
    while line := (await stdin.readline()).decode().strip():
        command, _, argument = line.partition(" ")
        if command == "count":
            say({"received": len(clients.receipts)})
        elif command == "stop":
            await clients.close_all()
            await asyncio.to_thread(Path(argument).write_text, json.dumps(clients.report()))
            say({"written": argument})
            return


if __name__ == "__main__":
    uvloop.run(main())
