"""The real UI in a real browser (Debian's chromium, headless): account, deposit and an order that turns PAID on
screen without a reload, from the live order socket or, when that cannot be opened, from the refresh loop."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from stack.local import LocalStack, free_ports, streamlit_command
from tests.conftest import ARTIFACTS
from tests.helpers import as_user, funded_account, settled

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ARTIFACTS / "streamlit-order-paid.png"
TIMEOUT_MS = 20_000
# Playwright's assertions wait 5 s by default, short for a loaded 2-core CI machine.
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make browser-deps installs it as root)"
)


@contextmanager
def serving_streamlit(stack: LocalStack, env: Mapping[str, str]) -> Iterator[str]:
    """The Streamlit app as its own process, the way ``make run`` starts it, in front of the test stack."""
    (port,) = free_ports(1)
    process = stack.spawn(
        "streamlit",
        streamlit_command(port),
        f"http://127.0.0.1:{port}/_stcore/health",
        env={"GATEWAY_URL": stack.gateway_url, **env},
    )
    try:
        stack.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop_process(process)


@pytest.fixture
def streamlit_url(stack: LocalStack) -> Iterator[str]:
    with serving_streamlit(stack, {}) as url:
        yield url


@pytest.fixture
def streamlit_without_socket_url(stack: LocalStack) -> Iterator[str]:
    """The app with nothing listening where it opens the order socket: only the REST API answers."""
    (closed_port,) = free_ports(1)
    with serving_streamlit(stack, {"GATEWAY_WS_URL": f"ws://127.0.0.1:{closed_port}"}) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def submit(page: Page, field: str, value: str, button: str) -> None:
    await page.get_by_label(field).fill(value)
    await page.get_by_role("button", name=button).click()


def status_cells(page: Page, status: str) -> Locator:
    """The grid paints on a canvas; its cells are mirrored in an off-screen table for assistive technology."""
    return page.get_by_role("gridcell", name=status, exact=True, include_hidden=True)


async def test_an_order_placed_in_the_browser_turns_paid(streamlit_url: str, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(streamlit_url)

    await page.get_by_role("button", name="Generate a new id").click()
    await expect(page.get_by_text(re.compile(r"You are u-"))).to_be_visible(timeout=TIMEOUT_MS)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Account created for")).to_be_visible(timeout=TIMEOUT_MS)
    await submit(page, "Amount to deposit", "100", "Deposit")
    await expect(page.get_by_text("New balance: 100.00.")).to_be_visible(timeout=TIMEOUT_MS)

    await page.get_by_role("link", name="Orders").click()
    all_settled = page.get_by_text("Live: statuses change here as payments settle.")
    await expect(all_settled).to_be_visible()
    await page.get_by_label("Description").fill("A book")
    await submit(page, "Amount", "42.50", "Place order")
    await expect(page.get_by_text("placed: PENDING until its payment settles.")).to_be_visible()

    await expect(page.get_by_test_id("stToast").filter(has_text="for 42.50: paid.")).to_be_visible()
    await expect(status_cells(page, "PAID")).to_have_count(1)
    await expect(all_settled).to_be_visible()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOT, full_page=True)


async def test_without_the_socket_the_table_refreshes_itself(
    streamlit_without_socket_url: str, browser: Browser, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "100.00")
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(streamlit_without_socket_url)
    await submit(page, "User id", user_id, "Use this id")
    await expect(page.get_by_text(f"You are {user_id}")).to_be_visible()

    await page.get_by_role("link", name="Orders").click()
    await submit(page, "Amount", "7.00", "Place order")
    await expect(page.get_by_text("placed: PENDING until its payment settles.")).to_be_visible()

    await expect(status_cells(page, "PAID")).to_have_count(1)
    await expect(page.get_by_text("Live:")).to_have_count(0)
    await expect(page.get_by_test_id("stToast")).to_have_count(0)


async def test_an_operator_follows_a_paid_orders_journey_on_its_chart(
    streamlit_url: str, browser: Browser, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    order = (await api.post("/orders", json={"amount": "2.00"}, headers=as_user(user_id))).json()
    await settled(api, user_id, order["id"])
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(streamlit_url)

    await page.get_by_role("link", name="Order journey").click()
    await page.get_by_label("Order id").fill(order["id"])
    await page.get_by_label("Order id").press("Enter")

    await expect(page.get_by_text("Time spent before each step")).to_be_visible()
    await expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible()
    await expect(page.get_by_role("gridcell", name="1. order created", include_hidden=True)).to_have_count(1)
    await page.screenshot(path=ARTIFACTS / "streamlit-order-journey.png", full_page=True)
