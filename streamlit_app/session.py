"""What one browser session remembers (who the user is, idempotency keys, the outcome of the last action) and the
frame every page renders in."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import streamlit as st

from messaging import values
from streamlit_app import live
from streamlit_app.api_client import ApiError, GatewayUnavailable, configured_operator_token

T = TypeVar("T")

USER_KEY = "user_id"
OPERATOR_TOKEN_KEY = "operator_token"
_FEEDBACK_PREFIX = "feedback:"
_SHOWN_FEEDBACK_KEY = "feedback_shown"
_IDEMPOTENCY_PREFIX = "idempotency:"


@dataclass(frozen=True)
class Feedback:
    ok: bool
    message: str


def current_user() -> str | None:
    return st.session_state.get(USER_KEY)


def set_user(user_id: str) -> None:
    if user_id != current_user():
        live.unsubscribe()  # the previous user's socket closes now, not when it idles out
    st.session_state[USER_KEY] = user_id


def is_valid_user_id(user_id: str) -> bool:
    return values.USER_ID.fullmatch(user_id) is not None


def new_user_id() -> str:
    return f"u-{secrets.token_hex(6)}"


def require_user() -> str:
    """The chosen user, or a hint to choose one and the end of this page's run."""
    user = current_user()
    if user is None:
        st.info("Choose who you are on the **Account** page first.")
        st.stop()
    return user


def operator_token() -> str:
    """The operator token the Operations page asks with: configured for the UI, or typed in this session. Without
    one, the page asks for it and shows nothing else."""
    if token := configured_operator_token() or st.session_state.get(OPERATOR_TOKEN_KEY):
        return token
    st.info("The operations figures are for operators: enter the operator token (`make run` prints where it is).")
    with st.form("operator_sign_in"):
        typed = st.text_input("Operator token", type="password")
        if st.form_submit_button("Sign in") and typed.strip():
            st.session_state[OPERATOR_TOKEN_KEY] = typed.strip()
            st.rerun()
    st.stop()


def forget_operator_token() -> None:
    st.session_state.pop(OPERATOR_TOKEN_KEY, None)


def operator_call(fetch: Callable[[], T]) -> T | None:
    """What an operator page asks the gateway, or None once the page said why it has nothing: the gateway down,
    or a refusal (a refused token is forgotten, so the page asks for it again)."""
    try:
        return fetch()
    except GatewayUnavailable as exc:
        show_gateway_down(exc)
    except ApiError as exc:
        if exc.status == 401:
            forget_operator_token()
        st.error(str(exc))
    return None


def idempotency_key(action: str) -> str:
    """One key per attempt of an action: a retry after no answer replays the first attempt instead of repeating it."""
    return st.session_state.setdefault(_IDEMPOTENCY_PREFIX + action, uuid.uuid4().hex)


def perform(action: str, call: Callable[[], str]) -> None:
    """Run an API call from a widget callback and keep its outcome for ``show_feedback`` next to the action.

    After an answer (success or refusal) the next attempt is a new one; after no answer the idempotency key is kept,
    so trying again cannot apply the action twice.
    """
    try:
        outcome = Feedback(ok=True, message=call())
    except GatewayUnavailable as exc:
        outcome = Feedback(ok=False, message=str(exc))
    except ApiError as exc:
        st.session_state.pop(_IDEMPOTENCY_PREFIX + action, None)
        outcome = Feedback(ok=False, message=str(exc))
    else:
        st.session_state.pop(_IDEMPOTENCY_PREFIX + action, None)
    st.session_state[_FEEDBACK_PREFIX + action] = outcome


def report(action: str, ok: bool, message: str) -> None:
    st.session_state[_FEEDBACK_PREFIX + action] = Feedback(ok, message)


def show_feedback(action: str) -> None:
    """The outcome of the action's last run, once (a rerun by ``rerun_keeping_feedback`` shows it again)."""
    feedback: Feedback | None = st.session_state.pop(_FEEDBACK_PREFIX + action, None)
    if feedback is None:
        return
    st.session_state.setdefault(_SHOWN_FEEDBACK_KEY, {})[action] = feedback
    if feedback.ok:
        st.success(feedback.message, icon=":material/check_circle:")
    else:
        st.error(feedback.message, icon=":material/error:")


def rerun_keeping_feedback() -> NoReturn:
    """Rerun the whole page on the app's own initiative: what the user was just told stays on screen."""
    for action, feedback in st.session_state.get(_SHOWN_FEEDBACK_KEY, {}).items():
        st.session_state[_FEEDBACK_PREFIX + action] = feedback
    st.rerun()


def show_gateway_down(exc: GatewayUnavailable) -> None:
    st.error(
        f"**The Gozon gateway is unavailable.** {exc} Start the system (`make run`) or check `GATEWAY_URL`, "
        "then reload this page.",
        icon=":material/cloud_off:",
    )


def run_page(render: Callable[[], None]) -> None:
    """Render a page; a gateway that does not answer becomes one banner at the top of it, not a traceback."""
    st.session_state[_SHOWN_FEEDBACK_KEY] = {}
    banner = st.container()
    try:
        render()
    except GatewayUnavailable as exc:
        for key in [key for key in st.session_state if str(key).startswith(_FEEDBACK_PREFIX)]:
            del st.session_state[key]
        with banner:
            show_gateway_down(exc)
