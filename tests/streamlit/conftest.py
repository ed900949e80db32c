"""Fixtures for the UI tests: the pages run against the real stack's gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stack.local import LocalStack
from streamlit_app.api_client import client
from streamlit_app.live import OrderFeed


@pytest.fixture
def gateway_url(stack: LocalStack) -> Iterator[str]:
    """Point the UI at the test stack's gateway, with a fresh client built from that setting."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "GATEWAY_URL", stack.gateway_url)
        client.clear()
        yield stack.gateway_url
    client.clear()


@pytest.fixture(autouse=True)
def live_feeds_end_with_the_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A page's order socket lives until its session idles out; here it closes when the test that opened it ends."""
    started: list[OrderFeed] = []
    start = OrderFeed.start

    def start_and_remember(feed: OrderFeed) -> OrderFeed:
        started.append(feed)
        return start(feed)

    monkeypatch.setattr(OrderFeed, "start", start_and_remember)
    yield
    for feed in started:
        feed.stop()
