"""With the gateway down, every page shows one clear banner, never a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stack.local import free_ports
from streamlit_app.api_client import client
from tests.streamlit.pages import click, open_page, problems, texts


@pytest.fixture
def gateway_down() -> Iterator[str]:
    (port,) = free_ports(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(os.environ, "GATEWAY_URL", f"http://127.0.0.1:{port}")
        client.clear()
        yield f"http://127.0.0.1:{port}"
    client.clear()


@pytest.mark.parametrize("name", ["app", "account", "orders", "operations"])
def test_each_page_shows_one_banner(gateway_down: str, name: str) -> None:
    page = open_page(name, user="u-nobody")

    (banner,) = texts(page, "error")
    assert "The Gozon gateway is unavailable." in banner
    assert f"{gateway_down} is not reachable" in banner
    assert problems(page) == []


def test_an_action_while_the_gateway_is_down_shows_the_banner_only(gateway_down: str) -> None:
    page = open_page("account")

    page = click(page, "Generate a new id")

    assert len(texts(page, "error")) == 1
    assert problems(page) == []
