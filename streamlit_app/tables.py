"""Orders as a table, the same on the Orders and the Operations page: status in its colour, reasons in words."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from streamlit_app.api_client import Order

STATUS_COLOURS = {"PENDING": "#b45309", "PAID": "#15803d", "FAILED": "#b91c1c"}
FAILURE_REASONS = {
    "INSUFFICIENT_FUNDS": "Insufficient funds",
    "ACCOUNT_NOT_FOUND": "No account",
    "PAYMENT_TIMEOUT": "Payment timed out",
}
TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"


def _status_style(status: str) -> str:
    colour = STATUS_COLOURS.get(status)
    return f"color: {colour}; font-weight: 600" if colour else ""


def orders_table(orders: Sequence[Order], *, with_user: bool = False) -> None:
    rows = [
        {
            "Order": order.id,
            **({"User": order.user_id} if with_user else {}),
            "Amount": str(order.amount),
            "Description": order.description or "",
            "Status": order.status,
            "Failure reason": FAILURE_REASONS.get(order.failure_reason or "", order.failure_reason or ""),
            "Created": order.created_at,
            "Updated": order.updated_at,
        }
        for order in orders
    ]
    styled: Styler = pd.DataFrame(rows).style.map(_status_style, subset=["Status"])
    st.dataframe(
        styled,
        hide_index=True,
        column_config={
            "Amount": st.column_config.TextColumn(alignment="right"),
            "Created": st.column_config.DatetimeColumn(format=TIME_FORMAT),
            "Updated": st.column_config.DatetimeColumn(format=TIME_FORMAT),
        },
    )
