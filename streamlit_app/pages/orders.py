"""Orders: place an order and watch it settle. An order is PENDING until its payment result arrives.

The table follows the live order socket (streamlit_app/live.py): it reads the orders again as soon as the socket
reports a change, and a toast tells when an order settled. While the socket cannot be opened, the table instead
reads itself again every second as long as any order is PENDING, and stops when none is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import streamlit as st

from streamlit_app import live, session
from streamlit_app.api_client import STATUSES, ApiError, GatewayUnavailable, Order, OrderPage, client
from streamlit_app.tables import FAILURE_REASONS, orders_table

LIVE_TICK_SECONDS = 0.5
REFRESH_SECONDS = 1.0
TOAST_LIMIT = 3
ALL = "All"
PAGE_SIZES = (10, 25, 50)
AMOUNT_KEY = "order_amount"
DESCRIPTION_KEY = "order_description"
STATUS_FILTER_KEY = "orders_status"
PAGE_SIZE_KEY = "orders_page_size"
PAGE_KEY = "orders_page"
PENDING_KEY = "orders_pending"
SHOWN_KEY = "orders_shown"


class Updates(Enum):
    """How the table learns of status changes; the value is its fragment's ``run_every``."""

    LIVE = LIVE_TICK_SECONDS  # look at the socket's news, read the orders only when there is some
    POLLING = REFRESH_SECONDS  # no socket: read the orders every time
    NONE = None  # no socket and nothing pending: nothing to wait for


@dataclass(frozen=True)
class Shown:
    """The orders last read in this page run, and what they were read for."""

    key: tuple[object, ...]
    page: OrderPage
    pending: int


def updates_for(feed: live.OrderFeed, pending: bool) -> Updates:
    if feed.live:
        return Updates.LIVE
    return Updates.POLLING if pending else Updates.NONE


def create_order(user: str) -> None:
    amount = st.session_state[AMOUNT_KEY].strip()
    description = st.session_state[DESCRIPTION_KEY].strip() or None

    def call() -> str:
        order = client().create_order(user, amount, description, session.idempotency_key("create_order"))
        st.session_state[PENDING_KEY] = True
        return f"Order {order.id} for {order.amount} placed: PENDING until its payment settles."

    session.perform("create_order", call)


def back_to_first_page() -> None:
    st.session_state[PAGE_KEY] = 1


def order_form(user: str) -> None:
    st.subheader("New order")
    with st.form("new_order", width=480):
        st.text_input("Amount", key=AMOUNT_KEY, placeholder="e.g. 49.90")
        st.text_area("Description", key=DESCRIPTION_KEY, max_chars=500, placeholder="Optional", height=68)
        st.form_submit_button("Place order", on_click=create_order, args=(user,), type="primary")
    session.show_feedback("create_order")


def page_count(page: OrderPage) -> int:
    return max(1, math.ceil(page.total / page.limit))


def selection() -> tuple[str | None, int, int]:
    """The status filter (None for all), the page size and the page number chosen."""
    choice = st.session_state.get(STATUS_FILTER_KEY, ALL)
    status = None if choice == ALL else choice
    return status, st.session_state.get(PAGE_SIZE_KEY, PAGE_SIZES[0]), st.session_state.get(PAGE_KEY, 1)


def load_orders(user: str) -> tuple[OrderPage, int]:
    """The selected page of the user's orders, and how many of all their orders are PENDING."""
    status, size, number = selection()
    page = client().orders(user, limit=size, offset=(number - 1) * size, status=status)
    if number > page_count(page):  # the filtered list shrank (pending orders settled) below the selected page
        number = st.session_state[PAGE_KEY] = page_count(page)
        page = client().orders(user, limit=size, offset=(number - 1) * size, status=status)
    pending = page.total if status == "PENDING" else client().orders(user, limit=1, status="PENDING").total
    return page, pending


def current_orders(user: str, feed: live.OrderFeed, *, reread: bool) -> tuple[OrderPage, int]:
    """The orders to show: read again when ``reread``, or when the socket has news or the selection changed since
    the last read of this page run."""
    version = feed.version  # before reading: news that arrives during the read makes the next run read again
    shown: Shown | None = st.session_state.get(SHOWN_KEY)
    if reread or shown is None or shown.key != (user, version, selection()):
        page, pending = load_orders(user)
        shown = st.session_state[SHOWN_KEY] = Shown((user, version, selection()), page, pending)
    return shown.page, shown.pending


def settled_message(order: Order) -> str:
    if order.status == "PAID":
        return f"Order {order.id[:8]} for {order.amount}: paid."
    reason = FAILURE_REASONS.get(order.failure_reason or "", order.failure_reason or "no reason given")
    return f"Order {order.id[:8]} for {order.amount}: failed ({reason.lower()})."


def announce(settled: list[Order]) -> None:
    """A toast for each order that settled; one for all of them when many settle at once."""
    if len(settled) > TOAST_LIMIT:
        paid = sum(order.status == "PAID" for order in settled)
        summary = f"{len(settled)} orders settled: {paid} paid, {len(settled) - paid} failed."
        st.toast(summary, icon=":material/done_all:")
        return
    for order in settled:
        icon = ":material/check_circle:" if order.status == "PAID" else ":material/cancel:"
        st.toast(settled_message(order), icon=icon)


def status_line(pending: int, updates: Updates) -> str | None:
    if updates is Updates.LIVE:
        waiting = f"{pending} pending, " if pending else ""
        return f":material/bolt: Live: {waiting}statuses change here as payments settle."
    if pending:
        return f":material/autorenew: {pending} pending: this table refreshes every {REFRESH_SECONDS:g} s."
    return None


def show_orders(page: OrderPage, pending: int, updates: Updates) -> None:
    if line := status_line(pending, updates):
        st.caption(line)
    if not page.items:
        st.info("No orders here yet.")
        return
    orders_table(page.items)
    if page.total > page.limit:
        st.pagination(page_count(page), key=PAGE_KEY)
    st.caption(f"Orders {page.offset + 1}-{page.offset + len(page.items)} of {page.total}, newest first.")


def refresh_orders_table(user: str, updates: Updates) -> None:
    """Show the orders: the one place the table's content comes from. Runs every ``updates.value`` seconds.

    Live, the orders are read again only when the socket has news, and each order that settled gets a toast;
    polling, they are read on every run. When ``updates`` no longer fits (the socket came or went, orders became
    pending or none is), the page reruns so the timer changes.
    """
    feed = live.subscription(user)
    announce(feed.take_settled())
    try:
        page, pending = current_orders(user, feed, reread=updates is not Updates.LIVE)
    except GatewayUnavailable as exc:
        session.show_gateway_down(exc)
        return
    except ApiError as exc:
        st.error(f"Could not read your orders: {exc}")
        return
    fitting = updates_for(feed, pending > 0)
    show_orders(page, pending, fitting)
    st.session_state[PENDING_KEY] = pending > 0
    if fitting is not updates:
        session.rerun_keeping_feedback()


def orders_section(user: str) -> None:
    st.subheader("Your orders")
    with st.container(horizontal=True):
        st.selectbox("Status", (ALL, *STATUSES), key=STATUS_FILTER_KEY, on_change=back_to_first_page, width=200)
        st.selectbox("Per page", PAGE_SIZES, key=PAGE_SIZE_KEY, on_change=back_to_first_page, width=120)
    st.session_state.pop(SHOWN_KEY, None)  # a full run always reads the orders again
    updates = updates_for(live.subscription(user), st.session_state.get(PENDING_KEY, False))
    table = st.fragment(refresh_orders_table, run_every=updates.value)
    table(user, updates)


def render() -> None:
    st.title("Orders")
    user = session.require_user()
    order_form(user)
    orders_section(user)


session.run_page(render)
