"""Dead letters: the messages the services gave up on, for an operator to read, replay once the cause is fixed, or
discard; every action needs a reason and lands in the audit log (``GET /ops/audit``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ActionResult, DeadLetter, client

STATES = ("PENDING", "REPLAYED", "DISCARDED")
ACTION = "dead_letter_action"


def letters_table(letters: list[DeadLetter]) -> None:
    frame = pd.DataFrame(
        [
            {
                "Letter": letter.id,
                "Type": letter.type or "",
                "Order": letter.order_id or "",
                "Reason": letter.reason,
                "Attempts": letter.attempts,
                "Last failure": letter.last_failed_at,
                "State": letter.state,
                "Replays": letter.replays,
            }
            for letter in letters
        ],
        columns=["Letter", "Type", "Order", "Reason", "Attempts", "Last failure", "State", "Replays"],
    )
    st.dataframe(frame, hide_index=True)


def act(token: str, letters: list[DeadLetter]) -> None:
    pending = [letter.id for letter in letters if letter.state == "PENDING"]
    if not pending:
        return
    with st.form("act_on_letter"):
        letter_id = st.selectbox("Letter", pending)
        reason = st.text_input("Reason (kept in the audit log)")
        replay, discard = st.columns(2)
        action = "replay" if replay.form_submit_button("Replay") else None
        action = "discard" if discard.form_submit_button("Discard") else action
    if action is None:
        return
    if not reason.strip():
        st.error("A reason is required.")
        return
    session.perform(ACTION, lambda: describe(client().act_on_dead_letter(token, letter_id, action, reason)))
    session.rerun_keeping_feedback()


def describe(result: ActionResult) -> str:
    return f"{result.id}: {result.outcome}. {result.detail}"


def render() -> None:
    st.title("Dead letters")
    token = session.operator_token()
    session.show_feedback(ACTION)
    state = st.segmented_control("State", STATES, default="PENDING")
    query = st.text_input("Order id or message id")
    page = session.operator_call(lambda: client().dead_letters(token, state=state, q=query.strip() or None))
    if page is None:
        return
    st.caption(f"{page.total} letter(s).")
    letters_table(page.items)
    act(token, page.items)


session.run_page(render)
