"""Upstream services behind the gateway: round-robin over their instances, skipping one that refuses."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import ClientConnectorError, ClientError, ClientSession, ClientTimeout, TCPConnector
from multidict import CIMultiDictProxy

from servicekit.problems import BadGateway, GatewayTimeout

log = logging.getLogger("gateway.upstreams")

# X-Request-Id is not among them: the gateway sends its own (the caller's when well-formed).
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "x-user-id", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "idempotent-replayed", "allow")


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Upstream:
    def __init__(self, name: str, urls: tuple[str, ...]) -> None:
        self.name = name
        self.urls = urls
        self._turn = itertools.cycle(range(len(urls)))

    def rotation(self) -> list[str]:
        """The instances to try for one request: all of them, starting with the next in turn."""
        start = next(self._turn)
        return [self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls))]

    async def forward(
        self, client: ClientSession, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamResponse:
        """Send the request to one instance. Only a refused connection moves on to the next one: then the
        request never reached a service, so even a POST is safe to send elsewhere."""
        url_path = f"{path}?{query}" if query else path
        # No body at all rather than an empty one: aiohttp would send `Content-Length: 0`, which makes Sanic in the
        # service log each GET's body as "not consumed".
        data = body or None
        for base in self.rotation():
            try:
                async with client.request(method, base + url_path, headers=headers, data=data) as response:
                    return UpstreamResponse(response.status, response.headers, await response.read())
            except ClientConnectorError as exc:
                log.warning("%s instance %s refused the connection: %s", self.name, base, exc)
            except TimeoutError:
                raise GatewayTimeout(f"The {self.name} service did not answer in time.") from None
            except ClientError as exc:
                log.warning("%s instance %s failed: %s", self.name, base, exc)
                raise BadGateway(f"The {self.name} service failed to answer.") from None
        raise BadGateway(f"The {self.name} service is unavailable.")


def open_client(max_connections: int, timeout: float) -> ClientSession:
    """One pooled keep-alive client for all upstreams. aiohttp rather than httpx: on the gateway's hot path
    httpx's pool bookkeeping cost more than the proxying itself (it showed in the gateway's profile: bench/README.md,
    "Profiles")."""
    return ClientSession(
        connector=TCPConnector(limit=max_connections, keepalive_timeout=30),
        timeout=ClientTimeout(total=timeout),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        auto_decompress=False,
    )
