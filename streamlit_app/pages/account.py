"""Account: choose who you are, open your account, deposit. Actions run in widget callbacks, so the balance shown
below is always read after the last action."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ApiError, Balance, GatewayUnavailable, client

USER_INPUT_KEY = "user_id_input"
DEPOSIT_AMOUNT_KEY = "deposit_amount"


def use_typed_user() -> None:
    typed = st.session_state[USER_INPUT_KEY].strip()
    if session.is_valid_user_id(typed):
        session.set_user(typed)
    else:
        session.report("identity", ok=False, message="A user id is 1 to 64 letters, digits, '_' or '-'.")


def use_new_user() -> None:
    user = session.new_user_id()
    session.set_user(user)
    st.session_state[USER_INPUT_KEY] = user


def create_account(user: str) -> None:
    session.perform("create_account", lambda: f"Account created for {client().create_account(user).user_id}.")


def deposit(user: str) -> None:
    amount = st.session_state[DEPOSIT_AMOUNT_KEY].strip()

    def call() -> str:
        balance = client().deposit(user, amount, session.idempotency_key("deposit"))
        return f"Deposited {amount}. New balance: {balance.balance}."

    session.perform("deposit", call)


def identity_section() -> None:
    st.subheader("Who are you?")
    st.session_state.setdefault(USER_INPUT_KEY, session.current_user() or "")
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_input(
            "User id", key=USER_INPUT_KEY, max_chars=64, placeholder="e.g. alice", on_change=use_typed_user, width=320
        )
        st.button("Use this id", on_click=use_typed_user)
        st.button("Generate a new id", on_click=use_new_user, icon=":material/casino:")
    session.show_feedback("identity")


def load_balance(user: str) -> Balance | None:
    """The balance, or None when the user has no account yet."""
    try:
        return client().balance(user)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def account_section(user: str) -> None:
    st.subheader("Your account")
    try:
        balance = load_balance(user)
    except GatewayUnavailable:
        raise
    except ApiError as exc:
        st.error(f"Could not read the balance: {exc}")
        return
    if balance is None:
        st.info(f"There is no account for **{user}** yet.")
        st.button("Create account", on_click=create_account, args=(user,), type="primary")
        session.show_feedback("create_account")
        return
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.metric("Balance", str(balance.balance), width="content")
        st.button("Refresh", icon=":material/refresh:", help="Orders settling elsewhere change the balance.")
    session.show_feedback("create_account")
    with st.form("deposit", width=480):
        st.text_input("Amount to deposit", key=DEPOSIT_AMOUNT_KEY, placeholder="e.g. 100.00")
        st.form_submit_button("Deposit", on_click=deposit, args=(user,), type="primary")
    session.show_feedback("deposit")


def render() -> None:
    st.title("Account")
    identity_section()
    user = session.current_user()
    if user is None:
        st.info("Type a user id or generate one to start.")
        return
    account_section(user)


session.run_page(render)
