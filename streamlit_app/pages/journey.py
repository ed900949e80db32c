"""Order journey: one order's steps across Orders and Payments, in time order, with the time spent between each
step and the one before it; its dead letters are on the Dead letters page."""

from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import JourneyStep, client


def steps_frame(steps: list[JourneyStep]) -> pd.DataFrame:
    start = steps[0].at
    rows = []
    for index, step in enumerate(steps):
        previous = steps[index - 1].at if index else start
        rows.append(
            {
                "#": index + 1,
                "Step": f"{index + 1}. {step.step}",
                "Service": step.service,
                "At": step.at,
                "Since previous (ms)": round((step.at - previous).total_seconds() * 1000, 1),
                "Since created (ms)": round((step.at - start).total_seconds() * 1000, 1),
                "Message": step.message_id or "",
                "Detail": step.detail,
            }
        )
    return pd.DataFrame(rows)


def render() -> None:
    st.title("Order journey")
    token = session.operator_token()
    order_id = st.text_input("Order id").strip()
    if not order_id:
        st.caption("Paste an order id to follow it through Orders and Payments.")
        return
    try:
        uuid.UUID(order_id)
    except ValueError:
        st.error("That is not an order id (a UUID).")
        return
    steps = session.operator_call(lambda: client().journey(token, order_id))
    if steps is None:
        return
    frame = steps_frame(steps)
    st.markdown("**Time spent before each step**")
    st.bar_chart(frame, x="Step", y="Since previous (ms)", color="Service", horizontal=True, height=320)
    st.dataframe(frame.drop(columns=["#"]), hide_index=True)
    letters = [step for step in steps if step.step == "dead-lettered"]
    if letters:
        ids = ", ".join(step.detail.split(" ", 1)[0] for step in letters)
        st.warning(
            f"Dead letters about this order: {ids}. Search the **Dead letters** page for its id to replay them.",
            icon=":material/report:",
        )


session.run_page(render)
