"""Live order status: many sockets on ``GET /ws/orders`` through the gateway while orders settle at a fixed
rate. How long a status change takes from its commit to every socket of its owner, what an idle socket
costs each process in memory, and whether any change was lost or reached someone else's socket.

The sockets are held by ``python -m bench.sockets``, a process of its own (see there). Its receipts are matched
afterwards with the orders database: an order's ``updated_at`` is ``now()`` of the transaction that settled it,
i.e. that transaction's *start*; the change is pushed only after it commits, so the latency includes the
settling statement and its commit (one short transaction). Receipt time is the client's ``time.time()``: same
machine, same clock.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import procs
from bench.load import LoadRecord, open_loop, summary_ms
from bench.observe import SettledOrder
from bench.workload import Created, ids_of, order_sender, per_unit_ms
from stack.local import ROOT

if TYPE_CHECKING:
    from bench.phases import Bench

READY_TIMEOUT = 300.0


class SocketClients:
    """The ``bench.sockets`` process, driven over its stdin and stdout (one JSON line per answer)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(cls, url: str, users: list[str], per_user: int) -> tuple[SocketClients, dict]:
        """The process, with every socket open (or failed), and what opening them took. Its stderr is ours."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sockets", cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        clients = cls(process)
        ready = await clients._ask(json.dumps({"url": url, "users": users, "per_user": per_user}), READY_TIMEOUT)
        return clients, ready

    async def received(self) -> int:
        return (await self._ask("count"))["received"]

    async def stop(self) -> dict[str, Any]:
        """Close every socket; everything the clients received."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "receipts.json"
            await self._ask(f"stop {path}", READY_TIMEOUT)
            await self._process.wait()
            return json.loads(await asyncio.to_thread(path.read_text))

    async def _ask(self, line: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()
        answer = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not answer:
            raise RuntimeError(f"bench.sockets exited with code {await self._process.wait()}")
        return json.loads(answer)

    def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()


def analyse(report: dict[str, Any], orders: dict[uuid.UUID, SettledOrder]) -> dict[str, Any]:
    """Match every message the sockets received with the orders of the run: latencies from ``updated_at`` to
    receipt, and every order's change counted at each open socket of its owner."""
    users, opened = report["users"], report["opened"]
    sockets_of: dict[str, list[int]] = defaultdict(list)
    for index, user in enumerate(users):
        if opened[index]:
            sockets_of[user].append(index)
    delivered: set[tuple[int, uuid.UUID]] = set()
    first_message: dict[int, str] = {}
    latencies: list[float] = []
    misrouted = duplicates = stale = earlier_orders = 0
    for index, received_at, raw in report["receipts"]:
        message = json.loads(raw)
        first_message.setdefault(index, message["type"])
        if message["type"] != "order.status_changed":
            continue
        order_id = uuid.UUID(message["order"]["id"])
        order = orders.get(order_id)
        owner = order.user_id if order else message["order"]["user_id"]
        if owner != users[index]:
            misrouted += 1
        elif order is None:
            earlier_orders += 1
        elif (index, order_id) in delivered:
            duplicates += 1
        else:
            delivered.add((index, order_id))
            stale += message["order"]["status"] != order.status
            latencies.append((received_at - order.updated_at) * 1000)
    missing = [
        (index, order_id)
        for order_id, order in orders.items()
        if order.status != "PENDING"
        for index in sockets_of[order.user_id]
        if (index, order_id) not in delivered
    ]
    return {
        "deliveries": len(delivered),
        "expected_deliveries": sum(len(sockets_of[order.user_id]) for order in orders.values()),
        "commit_to_client_ms": {**summary_ms(latencies), "max": round(max(latencies), 2) if latencies else None},
        "lost_deliveries": len(missing),
        "lost_orders": len({order_id for _, order_id in missing}),
        "misrouted": misrouted,
        "duplicates": duplicates,
        "stale": stale,
        "changes_of_earlier_orders": earlier_orders,
        "first_message_not_snapshot": sum(kind != "snapshot" for kind in first_message.values()),
        "closed_early": report["closed_early"],
    }


class LiveStatus:
    """One run of the live-status benchmark; ``measure()`` returns its figures."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        self.users = bench.users[: self.plan.live_users]

    def _pid(self, service: str) -> int:
        return self.bench.groups.groups[service]()[0]

    async def measure(self) -> dict[str, Any]:
        # Fresh processes: one that held sockets before reuses the memory they freed, and a second round would
        # measure next to nothing per socket.
        if self.plan.live_restart:
            await self.bench.restart(("orders", "gateway"), self.bench.stack.spawn_service)
        services = {service: self._pid(service) for service in ("gateway", "orders")}
        rss_before = {service: procs.rss_kib(pid) for service, pid in services.items()}
        sockets = len(self.users) * self.plan.live_sockets_per_user
        async with self.bench.progress.phase(f"opening {sockets} sockets"):
            clients, opened = await SocketClients.start(
                self.bench.stack.gateway_url.replace("http", "ws", 1) + "/ws/orders",
                self.users,
                self.plan.live_sockets_per_user,
            )
        try:
            idle = await self._idle(clients, services, rss_before, opened["opened"])
            loaded = await self._loaded(clients, opened["opened"])
        finally:
            clients.kill()
        return {"users": len(self.users), "sockets": sockets, "open": opened, "idle": idle, **loaded}

    async def _idle(
        self, clients: SocketClients, services: dict[str, int], rss_before: dict[str, int], opened: int
    ) -> dict[str, Any]:
        """Memory per idle socket: (RSS with every socket open and idle - RSS before) / sockets, per process."""
        before = self.bench.groups.cpu_snapshot()
        client_cpu = procs.cpu_seconds(clients.pid)
        async with self.bench.progress.phase("sockets idle", self.plan.live_idle_seconds):
            await asyncio.sleep(self.plan.live_idle_seconds)
        cpu = procs.cpu_share(before, self.bench.groups.cpu_snapshot())
        cpu["sockets"] = round((procs.cpu_seconds(clients.pid) - client_cpu) / self.plan.live_idle_seconds, 3)
        rss_after = {service: procs.rss_kib(pid) for service, pid in services.items()}
        rss_after["sockets"] = procs.rss_kib(clients.pid)
        return {
            "rss_before_kib": rss_before,
            "rss_after_kib": rss_after,
            "kib_per_socket": {
                service: round((rss_after[service] - rss_before.get(service, 0)) / opened, 2) if opened else None
                for service in rss_after
            },
            "cpu": cpu,
        }

    async def _loaded(self, clients: SocketClients, opened: int) -> dict[str, Any]:
        created: Created = []
        record = LoadRecord()
        rate, seconds = self.plan.live_rate, self.plan.live_seconds
        before = self.bench.groups.cpu_snapshot()
        client_cpu = procs.cpu_seconds(clients.pid)
        async with self.bench.progress.phase(f"live status @ {rate:.0f}/s", seconds, record.status):
            await open_loop(rate, seconds, order_sender(self.bench.gateway, self.users, created), record)
        wall = time.time() - record.started_at
        cpu = procs.cpu_share(before, self.bench.groups.cpu_snapshot())
        cpu["sockets"] = round((procs.cpu_seconds(clients.pid) - client_cpu) / wall, 3)
        async with self.bench.progress.phase("waiting for settlement"):
            left = await self.bench.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)
        orders = await self.bench.observer.orders_by_id(ids_of(created))
        # Every socket's snapshot, then each order's change once per socket of its owner (when all opened).
        expected = opened + len(orders) * self.plan.live_sockets_per_user
        async with self.bench.progress.phase("waiting for the sockets"):
            received = await self._wait_for(clients, expected)
            report = await clients.stop()
        started = record.started_at
        settled = await self.bench.observer.settled_between(started, record.ended_at, self.users, started)
        return {
            "rate": rate,
            "seconds": seconds,
            "sent": record.sent,
            "created": record.ok,
            "errors": record.errors,
            "errors_by_kind": dict(record.errors_by_kind),
            "left_pending": left,
            "settled_per_s": round(settled / record.seconds, 1) if record.seconds else None,
            "post_ms": summary_ms(record.latencies_ms),
            "received": received,
            "cpu": cpu,
            "cpu_ms_per_order": per_unit_ms(cpu, record.answered_per_s),
            **analyse(report, orders),
        }

    async def _wait_for(self, clients: SocketClients, expected: int) -> int:
        """Until the clients have received ``expected`` messages, or ``live_drain_seconds`` passed."""
        deadline = time.monotonic() + self.plan.live_drain_seconds
        while True:
            received = await clients.received()
            if received >= expected or time.monotonic() > deadline:
                return received
            await asyncio.sleep(0.2)
