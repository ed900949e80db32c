"""Fixtures for the UI tests: the pages run against the real stack's gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stack.local import LocalStack
from streamlit_app.api_client import client


@pytest.fixture
def gateway_url(stack: LocalStack) -> Iterator[str]:
    """Point the UI at the test stack's gateway, with a fresh client built from that setting."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "GATEWAY_URL", stack.gateway_url)
        client.clear()
        yield stack.gateway_url
    client.clear()
