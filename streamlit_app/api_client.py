"""The only HTTP code of the UI: a typed client for the gateway's public API.

Every failure becomes an ``ApiError`` whose message is the problem detail (RFC 9457) the API sent, so pages can
show it as is; a gateway that does not answer at all is a ``GatewayUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
import streamlit as st

from streamlit_app.settings import Settings

TIMEOUT_SECONDS = 10.0
STATUSES = ("PENDING", "PAID", "FAILED")


@dataclass(frozen=True)
class DeadLetter:
    id: str
    service: str
    type: str | None
    order_id: str | None
    reason: str
    error: str
    attempts: int
    last_failed_at: datetime
    state: str
    replays: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DeadLetter:
        return cls(
            id=body["id"],
            service=body["service"],
            type=body["type"],
            order_id=body["order_id"],
            reason=body["reason"],
            error=body["error"],
            attempts=body["attempts"],
            last_failed_at=datetime.fromisoformat(body["last_failed_at"]),
            state=body["state"],
            replays=body["replays"],
        )


@dataclass(frozen=True)
class DeadLetterPage:
    items: list[DeadLetter]
    total: int


@dataclass(frozen=True)
class JourneyStep:
    at: datetime
    service: str
    step: str
    detail: str
    message_id: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JourneyStep:
        return cls(
            at=datetime.fromisoformat(body["at"]),
            service=body["service"],
            step=body["step"],
            detail=body["detail"],
            message_id=body["message_id"],
        )


@dataclass(frozen=True)
class ActionResult:
    id: str
    outcome: str
    detail: str


class ApiError(Exception):
    """The API refused or failed a request; ``str(error)`` is the readable detail."""

    def __init__(self, detail: str, *, status: int | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.title = title


class GatewayUnavailable(ApiError):
    """No answer from the gateway: it is down, unreachable or too slow. The request may or may not have run."""


@dataclass(frozen=True)
class Balance:
    user_id: str
    balance: Decimal


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    amount: Decimal
    description: str | None
    status: str
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Order:
        return cls(
            id=body["id"],
            user_id=body["user_id"],
            amount=Decimal(body["amount"]),
            description=body.get("description"),
            status=body["status"],
            failure_reason=body.get("failure_reason"),
            created_at=datetime.fromisoformat(body["created_at"]),
            updated_at=datetime.fromisoformat(body["updated_at"]),
        )


@dataclass(frozen=True)
class OrderPage:
    items: list[Order]
    limit: int
    offset: int
    total: int


@dataclass(frozen=True)
class SettledBucket:
    at: datetime
    settled: int


@dataclass(frozen=True)
class MessagingFigures:
    """One service's outbox relay and consumers (messaging/runtime.py ``state``)."""

    running: bool
    listening: bool
    outbox_pending: int
    outbox_oldest_age_seconds: float
    publish_lag_p99_ms: float | None
    consumer_lag: dict[str, int]
    dead_letters: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> MessagingFigures:
        outbox = body["outbox"]
        return cls(
            running=body["running"],
            listening=body["listening"],
            outbox_pending=outbox["pending"],
            outbox_oldest_age_seconds=outbox["oldest_age_seconds"],
            publish_lag_p99_ms=outbox.get("publish_lag_p99_ms"),
            consumer_lag=body["consumer_lag"],
            dead_letters=body["dead_letters"],
        )

    def lag_per_topic(self) -> dict[str, int]:
        """Consumer lag summed over each topic's partitions (keys are ``topic/partition``)."""
        totals: dict[str, int] = {}
        for partition, lag in self.consumer_lag.items():
            topic = partition.rsplit("/", 1)[0]
            totals[topic] = totals.get(topic, 0) + lag
        return totals


def shown(count: int, estimated: bool) -> int | str:
    """A count as the pages show it: ``≈`` marks PostgreSQL's estimate."""
    return f"≈ {count:,}" if estimated else count


@dataclass(frozen=True)
class OrdersFigures:
    by_status: dict[str, int]
    latest_failures: list[Order]
    settled_per_10s: list[SettledBucket]
    messaging: MessagingFigures
    estimates: frozenset[str] = frozenset()
    """The figures that are PostgreSQL's estimates, not counts (big tables)."""

    @property
    def shown_by_status(self) -> dict[str, int | str]:
        estimated = "orders_by_status" in self.estimates
        return {status: shown(self.by_status.get(status, 0), estimated) for status in STATUSES}


@dataclass(frozen=True)
class PaymentsFigures:
    by_status: dict[str, int]
    accounts: int
    messaging: MessagingFigures
    estimates: frozenset[str] = frozenset()

    @property
    def shown_accounts(self) -> int | str:
        return shown(self.accounts, "accounts" in self.estimates)


@dataclass(frozen=True)
class Readiness:
    """The gateway's ``/ready``: whether each upstream service can serve (its database and Kafka are usable)."""

    ready: bool
    checks: dict[str, bool]


class GatewayClient:
    def __init__(self, base_url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def create_account(self, user: str) -> Balance:
        return _balance(self._request("POST", "/accounts", user))

    def balance(self, user: str) -> Balance:
        return _balance(self._request("GET", "/accounts/balance", user))

    def deposit(self, user: str, amount: str, idempotency_key: str) -> Balance:
        body = self._request("POST", "/accounts/deposit", user, json={"amount": amount}, key=idempotency_key)
        return _balance(body)

    def create_order(self, user: str, amount: str, description: str | None, idempotency_key: str) -> Order:
        payload = {"amount": amount, "description": description} if description else {"amount": amount}
        return Order.from_json(self._request("POST", "/orders", user, json=payload, key=idempotency_key))

    def orders(self, user: str, *, limit: int = 50, offset: int = 0, status: str | None = None) -> OrderPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        body = self._request("GET", "/orders", user, params=params)
        items = [Order.from_json(item) for item in body["items"]]
        return OrderPage(items=items, limit=body["limit"], offset=body["offset"], total=body["total"])

    def orders_figures(self, token: str) -> OrdersFigures:
        body = self._operator_request("GET", "/ops/orders", token)
        return OrdersFigures(
            by_status=body["orders_by_status"],
            latest_failures=[Order.from_json(item) for item in body["latest_failures"]],
            settled_per_10s=[
                SettledBucket(datetime.fromisoformat(item["at"]), item["settled"]) for item in body["settled_per_10s"]
            ],
            messaging=MessagingFigures.from_json(body),
            estimates=frozenset(body["estimates"]),
        )

    def payments_figures(self, token: str) -> PaymentsFigures:
        body = self._operator_request("GET", "/ops/payments", token)
        return PaymentsFigures(
            by_status=body["payments_by_status"],
            accounts=body["accounts"],
            messaging=MessagingFigures.from_json(body),
            estimates=frozenset(body["estimates"]),
        )

    def dead_letters(self, token: str, *, state: str | None = None, q: str | None = None) -> DeadLetterPage:
        params = {name: value for name, value in (("state", state), ("q", q)) if value}
        body = self._operator_request("GET", "/ops/dead-letters", token, params=params | {"limit": 200})
        return DeadLetterPage([DeadLetter.from_json(item) for item in body["items"]], body["total"])

    def act_on_dead_letter(self, token: str, letter_id: str, action: str, reason: str) -> ActionResult:
        """``action`` is ``replay`` or ``discard``."""
        path = f"/ops/dead-letters/{letter_id}/{action}"
        body = self._operator_request("POST", path, token, json={"reason": reason})
        return ActionResult(**body["results"][0])

    def journey(self, token: str, order_id: str) -> list[JourneyStep]:
        body = self._operator_request("GET", f"/ops/orders/{order_id}/journey", token)
        return [JourneyStep.from_json(step) for step in body["steps"]]

    def readiness(self) -> Readiness:
        """Answers also when an upstream is not ready (the gateway's 503 carries the same checks)."""
        response = self._send("GET", "/ready", {})
        body = _json(response)
        if not isinstance(body, dict) or "checks" not in body:
            raise _problem(response)
        return Readiness(ready=response.ok, checks=body["checks"])

    def _request(self, method: str, path: str, user: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = {"X-User-Id": user} | ({"Idempotency-Key": key} if key else {})
        response = self._send(method, path, headers, **kwargs)
        if not response.ok:
            raise _problem(response)
        return response.json()

    def _operator_request(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        response = self._send(method, path, {"Authorization": f"Bearer {token}"}, **kwargs)
        if not response.ok:
            raise _problem(response)
        return response.json()

    def _send(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise GatewayUnavailable(f"The gateway at {self.base_url} did not answer in {self.timeout:g}s.") from None
        except requests.RequestException:
            raise GatewayUnavailable(f"The gateway at {self.base_url} is not reachable.") from None


def configured_operator_token() -> str | None:
    """The operator token ``make run`` hands the UI (``GOZON_OPERATOR_TOKEN``), if any."""
    return Settings.from_env().operator_token


@st.cache_resource
def client() -> GatewayClient:
    """One client (one connection pool) for every session, pointed at ``GATEWAY_URL``."""
    return GatewayClient(Settings.from_env().gateway_url)


def _balance(body: dict[str, Any]) -> Balance:
    return Balance(user_id=body["user_id"], balance=Decimal(body["balance"]))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _problem(response: requests.Response) -> ApiError:
    body = _json(response)
    if isinstance(body, dict) and (body.get("detail") or body.get("title")):
        title = body.get("title")
        return ApiError(body.get("detail") or title, status=response.status_code, title=title)
    return ApiError(f"The gateway answered {response.status_code} {response.reason}.", status=response.status_code)
