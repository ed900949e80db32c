"""Upstream services behind the gateway: round-robin over their instances, skipping one that refuses."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping

import httpx

from servicekit.problems import BadGateway, GatewayTimeout

log = logging.getLogger("gateway.upstreams")

# X-Request-Id is not among them: the gateway sends its own (the caller's when well-formed).
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "x-user-id", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "idempotent-replayed", "allow")


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
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str | bytes],
        body: bytes,
    ) -> httpx.Response:
        """Send the request to one instance. Only a refused connection moves on to the next one: then the
        request never reached a service, so even a POST is safe to send elsewhere."""
        url_path = f"{path}?{query}" if query else path
        for base in self.rotation():
            try:
                return await client.request(method, base + url_path, headers=headers, content=body)
            except httpx.ConnectError as exc:
                log.warning("%s instance %s refused the connection: %s", self.name, base, exc)
            except httpx.TimeoutException:
                raise GatewayTimeout(f"The {self.name} service did not answer in time.") from None
            except httpx.HTTPError as exc:
                log.warning("%s instance %s failed: %s", self.name, base, exc)
                raise BadGateway(f"The {self.name} service failed to answer.") from None
        raise BadGateway(f"The {self.name} service is unavailable.")
