"""The gateway on its own (sanic-testing), with upstreams that refuse, hang or answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sanic_testing.testing import SanicASGITestClient

from gateway.app import create_app
from gateway.settings import Settings
from stack.local import free_ports


@pytest.fixture
async def silent_upstream() -> AsyncIterator[str]:
    """Accepts connections and never answers. It keeps the writers: from Python 3.13 on, a writer that is collected
    closes its connection, which would be a disconnect, not a hang."""
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda reader, writer: writers.append(writer), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    for writer in writers:
        writer.close()


class AnsweringUpstream(str):
    """The upstream's URL, with the head of every request it received."""

    heads: list[bytes]


@pytest.fixture
async def answering_upstream() -> AsyncIterator[AnsweringUpstream]:
    heads: list[bytes] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append((await reader.readuntil(b"\r\n\r\n")).lower())
        body = b'{"items": [], "limit": 50, "offset": 0, "total": 0}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    upstream = AnsweringUpstream(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    upstream.heads = heads
    yield upstream
    server.close()


def refused_url() -> str:
    (port,) = free_ports(1)
    return f"http://127.0.0.1:{port}"


def client(**settings: object) -> SanicASGITestClient:
    return SanicASGITestClient(create_app(Settings(**settings)))


async def test_a_service_that_is_down_is_a_502_problem() -> None:
    _, response = await client(orders_urls=(refused_url(),)).get("/orders", headers={"X-User-Id": "a"})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_service_that_hangs_is_a_504_problem(silent_upstream: str) -> None:
    app = client(orders_urls=(silent_upstream,), upstream_timeout=0.3)
    _, response = await app.get("/orders", headers={"X-User-Id": "a"})
    assert response.status_code == 504
    assert response.json["status"] == 504


async def test_an_instance_that_refuses_is_skipped(answering_upstream: str) -> None:
    app = client(orders_urls=(refused_url(), answering_upstream))
    statuses = [(await app.get("/orders", headers={"X-User-Id": "a"}))[1].status_code for _ in range(4)]
    assert statuses == [200] * 4


async def test_a_get_is_forwarded_without_a_body(answering_upstream: AnsweringUpstream) -> None:
    """A `Content-Length: 0` on a GET makes Sanic in the service log "body not consumed" as an error."""
    await client(orders_urls=(answering_upstream,)).get("/orders", headers={"X-User-Id": "a"})
    (head,) = answering_upstream.heads
    assert head.startswith(b"get /orders ")
    assert b"content-length" not in head
    assert b"transfer-encoding" not in head


async def test_identity_is_checked_before_anything_is_proxied() -> None:
    app = client(orders_urls=(refused_url(),))
    _, missing = await app.get("/orders")
    _, malformed = await app.get("/orders", headers={"X-User-Id": "no spaces"})
    assert (missing.status_code, malformed.status_code) == (401, 400)


async def test_cors_preflight_from_the_swagger_ui_is_allowed() -> None:
    _, response = await client().options(
        "/orders",
        headers={
            "Origin": "http://localhost:8082",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-user-id,content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:8082")
