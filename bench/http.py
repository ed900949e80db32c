"""A small keep-alive HTTP/1.1 client for the load generator.

httpx spends more CPU per request than the services do to answer it, so on a 2-core machine it would measure
itself. This client only writes a request and reads a ``Content-Length`` framed response, which is all that the
Gozon services send.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class ProtocolError(RuntimeError):
    """A response this client cannot frame (no Content-Length) or a connection closed mid-response."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> Response:
        # A server closes keep-alive connections that idled too long (Sanic: after 120 s); reusing one would fail.
        if self._writer is None or self._writer.is_closing() or self._reader is None or self._reader.at_eof():
            self.close()
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(head + body)
        try:
            header_block = await self._reader.readuntil(b"\r\n\r\n")
            status, length = _parse_head(header_block)
            return Response(status, await self._reader.readexactly(length))
        except BaseException:
            # Also on a timeout cancelling us: a response left unread would be taken for the next request's.
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _parse_head(block: bytes) -> tuple[int, int]:
    lines = block.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value)
    raise ProtocolError(f"response without Content-Length: {lines[0]!r}")


class Client:
    """Up to ``connections`` keep-alive connections to one server; callers beyond that wait for a free one."""

    def __init__(self, base_url: str, connections: int) -> None:
        host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
        self._host_header = f"{host}:{port}"
        self._all = [Connection(host, int(port)) for _ in range(connections)]
        self._idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
        for connection in self._all:
            self._idle.put_nowait(connection)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}"]
        if body or method in ("POST", "PUT", "PATCH"):
            # Sanic treats any Content-Length, even 0, as a body the handler must read.
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        connection = await self._idle.get()
        try:
            return await connection.request(head, body)
        finally:
            self._idle.put_nowait(connection)

    def close(self) -> None:
        for connection in self._all:
            connection.close()
