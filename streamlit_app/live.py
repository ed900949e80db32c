"""Live order status for the Orders page: one WebSocket per browser session, held on the Streamlit server.

A daemon thread holds the gateway's ``GET /ws/orders`` for the session's user, reconnecting with backoff, and
records what it hears: whether the socket is live (its snapshot arrived), a version that moves with every message,
and the orders that settled since the page last looked. The page reads these from a fragment a few times a second;
it never waits on the socket. The thread ends on ``stop`` (the user changed) or when nobody has looked for
IDLE_SECONDS (the session ended or left the Orders page); the next look starts a new one.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from typing import Any

import streamlit as st
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from streamlit_app.api_client import Order, client
from streamlit_app.settings import Settings

log = logging.getLogger(__name__)

FEED_KEY = "live_orders"
SOCKET_PATH = "/ws/orders"
SETTLED = frozenset({"PAID", "FAILED"})
OPEN_TIMEOUT_SECONDS = 3.0
CLOSE_TIMEOUT_SECONDS = 1.0
FIRST_CONTACT_SECONDS = 1.0
RECEIVE_TICK_SECONDS = 0.25
IDLE_SECONDS = 30.0
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
UNANNOUNCED_LIMIT = 50
_FAILURES = (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed, ValueError, KeyError)


def socket_url() -> str:
    """``GATEWAY_WS_URL`` if set, else the gateway's REST base URL with ws:// (wss:// for https://)."""
    base = Settings.from_env().gateway_ws_url or "ws" + client().base_url.removeprefix("http")
    return base.rstrip("/") + SOCKET_PATH


class OrderFeed:
    """What one user's order socket has said, kept current by a daemon thread until the feed ends."""

    def __init__(self, url: str, user_id: str) -> None:
        self.url = url
        self.user_id = user_id
        self._lock = threading.Lock()
        self._ending = threading.Event()
        self._first_contact = threading.Event()
        self._live = False
        self._version = 0
        self._settled: deque[Order] = deque(maxlen=UNANNOUNCED_LIMIT)
        self._last_seen = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"live-orders-{user_id}", daemon=True)

    @property
    def live(self) -> bool:
        """The socket is open and its snapshot arrived: every status change from now on is heard."""
        with self._lock:
            return self._live

    @property
    def version(self) -> int:
        """Moves with every message (a snapshot or a status change): the orders shown may be out of date."""
        with self._lock:
            return self._version

    def start(self) -> OrderFeed:
        self._thread.start()
        return self

    def wait_first_contact(self, timeout: float) -> None:
        """Until the first connection attempt went live or failed, at most ``timeout`` seconds."""
        self._first_contact.wait(timeout)

    def keep(self) -> bool:
        """Someone is still looking: the feed stays up. False when it has already ended."""
        with self._lock:
            if self._ending.is_set():
                return False
            self._last_seen = time.monotonic()
            return True

    def take_settled(self) -> list[Order]:
        """The orders that settled since the last call, oldest first."""
        with self._lock:
            settled = list(self._settled)
            self._settled.clear()
        return settled

    def stop(self) -> None:
        """End the feed and wait (briefly) for its socket to close."""
        self._ending.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(RECEIVE_TICK_SECONDS + CLOSE_TIMEOUT_SECONDS)

    def _ended(self) -> bool:
        with self._lock:
            if time.monotonic() - self._last_seen > IDLE_SECONDS:
                self._ending.set()
            return self._ending.is_set()

    def _run(self) -> None:
        failures = 0
        try:
            while not self._ended():
                failures = 0 if self._listen() else min(failures + 1, 5)
                delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2**failures)
                self._ending.wait(delay * random.uniform(0.5, 1.0))  # jitter: sessions do not reconnect in step
        finally:
            self._ending.set()

    def _listen(self) -> bool:
        """One connection, until it closes or the feed ends; True if it went live."""
        went_live = False
        try:
            with connect(
                self.url,
                additional_headers={"X-User-Id": self.user_id},
                open_timeout=OPEN_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            ) as connection:
                while not self._ended():
                    try:
                        message = connection.recv(timeout=RECEIVE_TICK_SECONDS)
                    except TimeoutError:
                        continue
                    if self._apply(json.loads(message)):
                        went_live = True
                        self._first_contact.set()
        except _FAILURES as exc:
            log.info("live order status for %s unavailable: %r", self.user_id, exc)
        finally:
            with self._lock:
                self._live = False
            self._first_contact.set()
        return went_live

    def _apply(self, message: dict[str, Any]) -> bool:
        """Record one message; True if it was a snapshot."""
        kind = message["type"]
        with self._lock:
            self._version += 1
            if kind == "snapshot":
                self._live = True
            elif kind == "order.status_changed":
                order = Order.from_json(message["order"])
                if order.status in SETTLED:
                    self._settled.append(order)
        return kind == "snapshot"


def subscription(user_id: str) -> OrderFeed:
    """This session's feed for the user: the running one, or a new one. A feed of another user is stopped first,
    so a session never holds more than one socket."""
    feed: OrderFeed | None = st.session_state.get(FEED_KEY)
    if feed is not None and feed.user_id == user_id and feed.keep():
        return feed
    unsubscribe()
    feed = st.session_state[FEED_KEY] = OrderFeed(socket_url(), user_id).start()
    feed.wait_first_contact(FIRST_CONTACT_SECONDS)
    return feed


def unsubscribe() -> None:
    """Close this session's socket, if it has one."""
    feed: OrderFeed | None = st.session_state.pop(FEED_KEY, None)
    if feed is not None:
        feed.stop()
