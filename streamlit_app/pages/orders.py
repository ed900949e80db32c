"""Orders: place an order and watch it settle. An order is PENDING until its payment result arrives; while any of
the user's orders is PENDING the table reads itself again every second, and it stops when none is."""

from __future__ import annotations

import math

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import STATUSES, ApiError, GatewayUnavailable, OrderPage, client
from streamlit_app.tables import orders_table

REFRESH_SECONDS = 1.0
ALL = "All"
PAGE_SIZES = (10, 25, 50)
AMOUNT_KEY = "order_amount"
DESCRIPTION_KEY = "order_description"
STATUS_FILTER_KEY = "orders_status"
PAGE_SIZE_KEY = "orders_page_size"
PAGE_KEY = "orders_page"
PENDING_KEY = "orders_pending"


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


def load_orders(user: str) -> tuple[OrderPage, int]:
    """The selected page of the user's orders, and how many of all their orders are PENDING."""
    choice = st.session_state.get(STATUS_FILTER_KEY, ALL)
    status = None if choice == ALL else choice
    size = st.session_state.get(PAGE_SIZE_KEY, PAGE_SIZES[0])
    number = st.session_state.get(PAGE_KEY, 1)
    page = client().orders(user, limit=size, offset=(number - 1) * size, status=status)
    if number > page_count(page):  # the filtered list shrank (pending orders settled) below the selected page
        number = st.session_state[PAGE_KEY] = page_count(page)
        page = client().orders(user, limit=size, offset=(number - 1) * size, status=status)
    pending = page.total if status == "PENDING" else client().orders(user, limit=1, status="PENDING").total
    return page, pending


def show_orders(page: OrderPage, pending: int) -> None:
    if pending:
        st.caption(f":material/autorenew: {pending} pending: this table refreshes every {REFRESH_SECONDS:g} s.")
    if not page.items:
        st.info("No orders here yet.")
        return
    orders_table(page.items)
    if page.total > page.limit:
        st.pagination(page_count(page), key=PAGE_KEY)
    st.caption(f"Orders {page.offset + 1}-{page.offset + len(page.items)} of {page.total}, newest first.")


def refresh_orders_table(user: str, refreshing: bool) -> None:
    """Read and show the orders again: the one place the table's content comes from.

    Runs every REFRESH_SECONDS while ``refreshing``; when that no longer matches whether orders are pending, the
    page reruns so the timer starts or stops.
    """
    try:
        page, pending = load_orders(user)
    except GatewayUnavailable as exc:
        session.show_gateway_down(exc)
        return
    except ApiError as exc:
        st.error(f"Could not read your orders: {exc}")
        return
    show_orders(page, pending)
    st.session_state[PENDING_KEY] = pending > 0
    if (pending > 0) != refreshing:
        session.rerun_keeping_feedback()


def orders_section(user: str) -> None:
    st.subheader("Your orders")
    with st.container(horizontal=True):
        st.selectbox("Status", (ALL, *STATUSES), key=STATUS_FILTER_KEY, on_change=back_to_first_page, width=200)
        st.selectbox("Per page", PAGE_SIZES, key=PAGE_SIZE_KEY, on_change=back_to_first_page, width=120)
    refreshing = st.session_state.get(PENDING_KEY, False)
    table = st.fragment(refresh_orders_table, run_every=REFRESH_SECONDS if refreshing else None)
    table(user, refreshing)


def render() -> None:
    st.title("Orders")
    user = session.require_user()
    order_form(user)
    orders_section(user)


session.run_page(render)
