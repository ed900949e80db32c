"""Operations: how the system is doing, for whoever runs it.

Figures come from what the services already expose through the gateway: each service's ``GET /ops`` (as
``/ops/orders`` and ``/ops/payments``) and the gateway's ``GET /ready`` (see streamlit_app/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pandas as pd
import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import (
    STATUSES,
    ApiError,
    GatewayUnavailable,
    OrdersFigures,
    PaymentsFigures,
    SettledBucket,
    client,
)
from streamlit_app.tables import orders_table

T = TypeVar("T")

AUTO_REFRESH_KEY = "operations_auto_refresh"
AUTO_REFRESH_SECONDS = 5
BUCKET_SECONDS = 10
WINDOW = timedelta(minutes=5)


def figures_or_warning(service: str, fetch: Callable[[], T]) -> T | None:
    """One service's figures; if that service cannot answer, a warning in their place and the rest of the page."""
    try:
        return fetch()
    except GatewayUnavailable:
        raise
    except ApiError as exc:
        if exc.status == 401:
            raise
        st.warning(f"No figures from **{service}**: {exc}", icon=":material/warning:")
        return None


def health_section() -> None:
    st.subheader("Health")
    readiness = figures_or_warning("the gateway's readiness check", client().readiness)
    columns = st.columns(4)
    with columns[0]:
        st.markdown("**gateway**")
        st.badge("Up", icon=":material/check:", color="green")
    for column, (service, ready) in zip(columns[1:], (readiness.checks if readiness else {}).items(), strict=False):
        with column:
            st.markdown(f"**{service}**")
            if ready:
                st.badge("Ready", icon=":material/check:", color="green")
            else:
                st.badge("Not ready", icon=":material/close:", color="red")


def settled_per_second(buckets: list[SettledBucket], now: datetime) -> pd.DataFrame:
    """Orders settled per second in each 10-second bucket of the window, empty buckets included."""
    settled = {int(bucket.at.timestamp()): bucket.settled for bucket in buckets}
    last = int(now.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS
    starts = range(last - int(WINDOW.total_seconds()) + BUCKET_SECONDS, last + 1, BUCKET_SECONDS)
    return pd.DataFrame(
        {
            "Time": [datetime.fromtimestamp(start, UTC) for start in starts],
            "Settled per second": [settled.get(start, 0) / BUCKET_SECONDS for start in starts],
        }
    )


def orders_section(figures: OrdersFigures, payments: PaymentsFigures | None) -> None:
    st.subheader("Orders")
    columns = st.columns(len(STATUSES) + 1)
    for column, (status, count) in zip(columns, figures.shown_by_status.items(), strict=False):
        column.metric(status, count)
    columns[-1].metric("Accounts", payments.shown_accounts if payments else "?")
    if figures.estimates or (payments and payments.estimates):
        st.caption("≈: PostgreSQL's estimate; the table is too large to count on every refresh.")
    st.markdown("**Orders settled per second**, last 5 minutes")
    chart = settled_per_second(figures.settled_per_10s, datetime.now(UTC))
    st.bar_chart(chart, x="Time", y="Settled per second", height=220)
    st.markdown("**Latest failures**")
    if figures.latest_failures:
        orders_table(figures.latest_failures, with_user=True)
    else:
        st.caption("No failed orders.")


def messaging_section(services: dict[str, OrdersFigures | PaymentsFigures]) -> None:
    st.subheader("Messaging")
    outbox = pd.DataFrame(
        [
            {
                "Service": service,
                "Outbox backlog": figures.messaging.outbox_pending,
                "Oldest unpublished (s)": round(figures.messaging.outbox_oldest_age_seconds, 1),
                "Publish lag p99 (ms)": figures.messaging.publish_lag_p99_ms,
                "Dead letters": figures.messaging.dead_letters,
                "Relay running": figures.messaging.running,
                "Listening": figures.messaging.listening,
            }
            for service, figures in services.items()
        ]
    )
    st.dataframe(outbox, hide_index=True)
    lag = pd.DataFrame(
        [
            {"Consumer": service, "Topic": topic, "Lag (messages)": messages}
            for service, figures in services.items()
            for topic, messages in sorted(figures.messaging.lag_per_topic().items())
        ],
        columns=["Consumer", "Topic", "Lag (messages)"],
    )
    st.markdown("**Consumer lag per topic**")
    st.dataframe(lag, hide_index=True)


def dashboard(token: str) -> None:
    """Everything below the toggle: read again every AUTO_REFRESH_SECONDS while auto-refresh is on."""
    try:
        health_section()
        orders = figures_or_warning("orders", lambda: client().orders_figures(token))
        payments = figures_or_warning("payments", lambda: client().payments_figures(token))
    except GatewayUnavailable as exc:
        session.show_gateway_down(exc)
        return
    except ApiError as exc:
        if exc.status != 401:
            raise
        session.forget_operator_token()
        st.error("The operator token was refused.", icon=":material/lock:")
        return
    if orders:
        orders_section(orders, payments)
    services = {name: figures for name, figures in (("orders", orders), ("payments", payments)) if figures}
    if services:
        messaging_section(services)
    st.caption(f"As of {datetime.now().astimezone():%H:%M:%S}, asked as the operator.")


def render() -> None:
    st.title("Operations")
    auto_refresh = st.toggle(f"Refresh every {AUTO_REFRESH_SECONDS} s", value=True, key=AUTO_REFRESH_KEY)
    token = session.operator_token()
    st.fragment(dashboard, run_every=AUTO_REFRESH_SECONDS if auto_refresh else None)(token)


session.run_page(render)
