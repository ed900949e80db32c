"""Driving one page of the UI with ``AppTest``, with the session state the app would have."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from stack.local import ROOT
from streamlit_app.session import USER_KEY

APP_DIR = ROOT / "streamlit_app"


def open_page(name: str, user: str | None = None) -> AppTest:
    """``name`` is a file under streamlit_app/pages, or ``app`` for the entry point with its navigation."""
    path = APP_DIR / "app.py" if name == "app" else APP_DIR / "pages" / f"{name}.py"
    page = AppTest.from_file(str(path), default_timeout=30)
    if user is not None:
        page.session_state[USER_KEY] = user
    return page.run()


def click(page: AppTest, label: str) -> AppTest:
    (button,) = [button for button in page.button if button.label == label]
    return button.click().run()


def texts(page: AppTest, kind: str) -> list[str]:
    """The bodies of every element of one kind (``error``, ``success``, ``markdown``, ``caption``...)."""
    return [element.value for element in getattr(page, kind)]


def problems(page: AppTest) -> list[str]:
    """Tracebacks the page raised: a page must never show one."""
    return [element.value + "\n" + "\n".join(element.stack_trace) for element in page.exception]
