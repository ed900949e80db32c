"""The users: a steady load through the gateway, remembering what every user was told.

Each user's requests go strictly one after another (a user is one browser tab), many users at once. Most users
open an account, some start with little or no money, deposits come in between orders, and a few users never open
an account. Every order carries a unique description, so an order whose answer was lost can still be found. A
request whose outcome is unknown (5xx, no answer, a claim still in flight) is retried under the same
``Idempotency-Key`` until it is decided; without a key it is never retried (it might have been applied).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from tests.chaos.config import ChaosConfig
from tests.chaos.findings import Findings

log = logging.getLogger("chaos.load")

CENT = Decimal("0.01")
SYNTHETIC_FUNDS = Decimal("1000000.00")
REQUEST_TIMEOUT = 30.0
STOP_GRACE = 5.0


@dataclass(frozen=True)
class ServerError:
    """A 5xx (or no answer at all) from the gateway, with when the request was in flight."""

    method: str
    path: str
    status: int
    started: float
    ended: float


@dataclass
class OrderRequest:
    user_id: str
    amount: Decimal
    description: str
    key: str | None
    order_id: str | None = None
    """Set once a 201 told us the id; None while (or if forever) the outcome is unknown."""

    @property
    def body(self) -> dict[str, str]:
        return {"amount": str(self.amount), "description": self.description}


@dataclass
class User:
    id: str
    has_account: bool
    deposits: list[Decimal] = field(default_factory=list)
    """Deposits the user was told succeeded."""
    unresolved_deposits: list[Decimal] = field(default_factory=list)
    opened: bool = False
    last_order: OrderRequest | None = None


class Pacer:
    """Hands out start times ``1/rate`` apart, shared by every session: the load's pace, not the system's."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self._next = max(self._next + self._interval, now)
        await asyncio.sleep(self._next - now)


class Load:
    def __init__(self, config: ChaosConfig, gateway_url: str, findings: Findings) -> None:
        self.config = config
        self.findings = findings
        prefix = f"chaos-{config.seed}"
        self.users = [User(f"{prefix}-u{n}", has_account=True) for n in range(config.users)]
        self.users += [User(f"{prefix}-nacct{n}", has_account=False) for n in range(config.users_without_account)]
        self.synthetic_users = [User(f"{prefix}-pair{n}", has_account=True) for n in range(4)]
        self.synthetic_users.append(User(f"{prefix}-pair-nacct", has_account=False))
        # Their orders are placed by the poison faults; the services fail their handling on purpose (poison.py).
        self.flaky_user = User(f"{prefix}-flaky", has_account=True)
        self.broken_user = User(f"{prefix}-broken", has_account=True)
        self.orders: list[OrderRequest] = []
        self.accepted = 0
        self.replays = 0
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[ServerError] = []
        self._client = httpx.AsyncClient(
            base_url=gateway_url,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=config.concurrency + 4),
        )
        self._pacer = Pacer(config.rate)
        self._stopping = asyncio.Event()
        self._stopped_at = 0.0
        self.enough = asyncio.Event()
        """Set once ``config.orders`` orders were accepted."""

    @property
    def real_user_ids(self) -> set[str]:
        return {user.id for user in self.users}

    @property
    def special_users(self) -> list[User]:
        return [self.flaky_user, self.broken_user]

    async def close(self) -> None:
        await self._client.aclose()

    # Sessions -------------------------------------------------------------------------------------------------

    async def prepare_synthetic_users(self) -> None:
        """Accounts with more money than the concurrent pairs will ever take, for users no order belongs to, and
        for the special users, so that only the faults can keep their orders from being paid."""
        for user in [*self.synthetic_users, *self.special_users]:
            if user.has_account:
                await self._open_account(user, SYNTHETIC_FUNDS)

    async def place(self, user: User, rng: random.Random) -> OrderRequest | None:
        """One order for ``user``, outside the sessions; None when its outcome stayed unknown."""
        order = await self._order(user, rng, counted=False)
        return order if order.order_id else None

    async def run(self) -> None:
        """Sessions until ``stop()``; each finishes (or gives up on) the request it is making."""
        sessions = self.config.concurrency
        await asyncio.gather(
            *(self._session(self.users[n::sessions], random.Random(f"{self.config.seed}-{n}")) for n in range(sessions))
        )

    def stop(self) -> None:
        self._stopped_at = time.monotonic()
        self._stopping.set()

    def _given_up(self) -> bool:
        """Once the load stops, a request still undecided is left to be found in the database."""
        return self._stopping.is_set() and time.monotonic() > self._stopped_at + STOP_GRACE

    async def _session(self, users: list[User], rng: random.Random) -> None:
        while users and not self._stopping.is_set():
            await self._pacer.wait()
            user = rng.choice(users)
            if user.has_account and not user.opened:
                await self._open_account(user, _money(rng, 1, 300) if rng.random() < 0.8 else None)
                continue
            roll = rng.random()
            if roll < 0.1 and user.last_order and user.last_order.key and user.last_order.order_id:
                await self._repeat(user.last_order)
            elif roll < 0.3 and user.has_account:
                await self._deposit(user, _money(rng, 10, 200))
            else:
                await self._order(user, rng)

    async def _open_account(self, user: User, initial: Decimal | None) -> None:
        response = await self._until_decided("POST", "/accounts", user.id)
        if response is None:
            return
        if response.status_code not in (201, 409):
            self._unexpected(response, "opening an account")
            return
        user.opened = True
        if initial:
            await self._deposit(user, initial)

    async def _deposit(self, user: User, amount: Decimal) -> None:
        key = str(uuid.uuid4())
        response = await self._until_decided("POST", "/accounts/deposit", user.id, {"amount": str(amount)}, key)
        if response is None:
            user.unresolved_deposits.append(amount)
        elif response.status_code == 200:
            user.deposits.append(amount)
        else:
            self._unexpected(response, "depositing")

    async def _order(self, user: User, rng: random.Random, counted: bool = True) -> OrderRequest:
        key = str(uuid.uuid4()) if rng.random() < 0.8 or not counted else None
        order = OrderRequest(user.id, _money(rng, 1, 80), f"chaos {uuid.uuid4()}", key)
        self.orders.append(order)
        if key:
            response = await self._until_decided("POST", "/orders", user.id, order.body, key)
        else:
            response = await self._call("POST", "/orders", user.id, order.body)
            if response is not None and response.status_code >= 500:
                response = None
        if response is None:
            return order
        if response.status_code != 201:
            self._unexpected(response, "placing an order")
            return order
        created = response.json()
        if (created["status"], created["amount"], created["user_id"]) != ("PENDING", str(order.amount), user.id):
            self.findings.violation("wrong order created", f"{order.body} for {user.id} -> {created}")
        order.order_id = created["id"]
        user.last_order = order
        if counted:
            self.accepted += 1
            if self.accepted >= self.config.orders:
                self.enough.set()
        return order

    async def _repeat(self, order: OrderRequest) -> None:
        """The same request under the same key: the first answer again, and no second order."""
        response = await self._until_decided("POST", "/orders", order.user_id, order.body, order.key)
        if response is None:
            return
        self.replays += 1
        replayed = response.headers.get("idempotent-replayed") == "true"
        if response.status_code != 201 or not replayed or response.json()["id"] != order.order_id:
            self.findings.violation(
                "idempotent replay broken",
                f"key {order.key} of order {order.order_id}: {response.status_code} replayed={replayed} "
                f"{response.text[:200]}",
            )

    # HTTP -----------------------------------------------------------------------------------------------------

    async def _until_decided(
        self, method: str, path: str, user_id: str, body: dict | None = None, key: str | None = None
    ) -> httpx.Response | None:
        """The request, retried while its outcome is unknown; None if still unknown at the deadline."""
        deadline = time.monotonic() + self.config.retry_deadline
        delay = 0.2
        while True:
            response = await self._call(method, path, user_id, body, key)
            if response is not None and response.status_code < 500 and response.status_code != 409:
                return response
            if response is not None and response.status_code == 409 and path == "/accounts":
                return response
            if time.monotonic() > deadline or self._given_up():
                log.warning("%s %s for %s: outcome unknown, no more retries", method, path, user_id)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _call(
        self, method: str, path: str, user_id: str, body: dict | None = None, key: str | None = None
    ) -> httpx.Response | None:
        headers = {"X-User-Id": user_id}
        if key:
            headers["Idempotency-Key"] = key
        started = time.time()
        try:
            response = await self._client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("%s %s: no answer (%s)", method, path, type(exc).__name__)
            self._record(method, path, 0, started)
            return None
        self._record(method, path, response.status_code, started)
        return response

    def _record(self, method: str, path: str, status: int, started: float) -> None:
        self.statuses[status] += 1
        if status == 0 or status >= 500:
            self.server_errors.append(ServerError(method, path, status, started, time.time()))

    def _unexpected(self, response: httpx.Response, doing: str) -> None:
        self.findings.violation(
            "unexpected answer", f"{doing}: {response.status_code} {response.text[:200]} ({response.request.url})"
        )


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return (Decimal(rng.randint(low * 100, high * 100)) * CENT).quantize(CENT)
