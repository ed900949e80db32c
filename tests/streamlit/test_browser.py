"""The real UI in a real browser (Debian's chromium, headless): account, deposit and an order that turns PAID."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from stack.local import LocalStack, free_ports, streamlit_command
from tests.conftest import ARTIFACTS

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

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make browser-deps installs it as root)"
)


@pytest.fixture
def streamlit_url(stack: LocalStack) -> Iterator[str]:
    """The Streamlit app as its own process, the way ``make run`` starts it, in front of the test stack."""
    (port,) = free_ports(1)
    process = stack.spawn(
        "streamlit",
        streamlit_command(port),
        f"http://127.0.0.1:{port}/_stcore/health",
        env={"GATEWAY_URL": stack.gateway_url},
    )
    try:
        stack.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop_process(process)


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
    await page.get_by_label("Description").fill("A book")
    await submit(page, "Amount", "42.50", "Place order")
    await expect(page.get_by_text("placed: PENDING until its payment settles.")).to_be_visible(timeout=TIMEOUT_MS)

    # The grid paints on a canvas; its cells are mirrored in an off-screen table for assistive technology.
    await expect(page.get_by_role("gridcell", name="PAID", exact=True, include_hidden=True)).to_have_count(
        1, timeout=TIMEOUT_MS
    )
    await expect(page.get_by_text("refreshes every")).to_have_count(0, timeout=TIMEOUT_MS)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOT, full_page=True)
