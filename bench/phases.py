"""The measurements, one method per figure: the PostgreSQL bound, saturation, latency at a fixed rate (with relay
lag), gateway overhead, and the profile of the hot path; the PostgreSQL ceiling for Gozon's own statements, latency
with poison messages, the live-status sockets, retention while writing and the operations endpoints at scale have
modules of their own (``bench.ceiling``, ``bench.poison``, ``bench.live``, ``bench.retention``,
``bench.ops_scale``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import procs
from bench.ceiling import Ceiling
from bench.http import Client
from bench.live import LiveStatus
from bench.load import LoadRecord, closed_loop, open_loop, summary_ms
from bench.observe import Observer
from bench.pgbench import Pgbench, cluster_cpu_seconds
from bench.poison import Poison
from bench.progress import Progress
from bench.retention import Retention
from bench.workload import DEPOSIT_BODY, JSON, Created, ids_of, order_reader, order_sender, per_unit_ms
from stack.local import ROOT, LocalStack, Process

SERVICES = ("payments", "orders", "gateway")
Alongside = Callable[[Created, float], Awaitable[None]]
# A step kept up when it settled at least this share of its offered rate (the first seconds are left out, and the
# settled count is of a 10 s window, so a step that kept up is within a few per cent of its rate).
KEPT_UP = 0.95


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs. ``quick()`` is the few-seconds-per-phase smoke run."""

    clients: int = 32
    users: int = 200
    pgbench_seconds: int = 30
    # The PostgreSQL ceiling: one outbox relay transaction per this many orders. 1, the worst case, is also what a
    # relay woken by every NOTIFY finds while orders come no faster than it publishes them (about a row per wake).
    ceiling_orders_per_relay: int = 1
    first_rate: float = 50.0
    rate_factor: float = 1.5
    # Between the last step that kept up and the next one, the knee is looked for in these finer steps.
    probe_factor: float = 1.1
    max_rate: float = 3000.0
    step_seconds: float = 10.0
    step_warmup: float = 2.0
    patience: int = 2
    fixed_rate: float = 100.0
    fixed_seconds: float = 60.0
    gateway_seconds: float = 15.0
    profile_seconds: float = 30.0
    profile_rate: float = 100.0
    drain_timeout: float = 180.0
    # Live status: live_users x live_sockets_per_user sockets (within Orders' default caps: 5 a user, 2000 in all).
    live_users: int = 200
    live_sockets_per_user: int = 5
    live_rate: float = 100.0
    live_seconds: float = 60.0
    live_idle_seconds: float = 5.0
    live_drain_seconds: float = 30.0
    # Restart gateway and Orders before the sockets open, so memory per socket is measured on fresh processes.
    live_restart: bool = True
    # Retention while writing: enough old rows that the paced cleanup never runs out within its windows, and the
    # unpaced one runs for seconds rather than an instant.
    retention_outbox_rows: int = 1_000_000
    retention_inbox_rows: int = 500_000
    retention_rate: float = 50.0
    retention_seconds: float = 20.0
    retention_warmup: float = 2.0
    retention_max_seconds: float = 300.0
    retention_probe_rate: float = 100.0
    # Operations at scale: the /ops endpoints timed before and after a preload of this many settled orders; an
    # endpoint is timed over ops_requests sequential requests, or as many as fit in ops_seconds.
    ops_orders: int = 10_000_000
    ops_orders_per_user: int = 10
    ops_requests: int = 300
    ops_warmup_requests: int = 5
    ops_seconds: float = 60.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            users=20,
            pgbench_seconds=3,
            first_rate=100.0,
            rate_factor=2.0,
            step_seconds=3.0,
            step_warmup=1.0,
            patience=1,
            fixed_seconds=4.0,
            gateway_seconds=3.0,
            profile_seconds=4.0,
            drain_timeout=60.0,
            live_users=20,
            live_seconds=4.0,
            live_idle_seconds=1.0,
            retention_outbox_rows=100_000,
            retention_inbox_rows=50_000,
            retention_seconds=4.0,
            retention_warmup=1.0,
            ops_orders=10_000,
            ops_requests=50,
            ops_seconds=5.0,
        )


def _kept_up(step: dict[str, Any]) -> bool:
    """The step settled (nearly) all it was offered, and no POST failed."""
    return step["errors"] == 0 and step["settled_per_s"] >= KEPT_UP * step["offered_per_s"]


def _shown(path: Path) -> str:
    """The path relative to the repository when it is inside it, so results do not name one machine's layout."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class Bench:
    def __init__(self, stack: LocalStack, plan: Plan, observer: Observer) -> None:
        self.stack = stack
        self.plan = plan
        self.observer = observer
        self.groups = procs.ProcessGroups(self._process_groups())
        self.progress = Progress(on_tick=self.groups.sample_memory)
        self.gateway = Client(stack.gateway_url, plan.clients)
        self.users: list[str] = []
        self.pgbench = Pgbench(stack.postgres)

    def _process_groups(self) -> dict[str, procs.PidSource]:
        def service(name: str) -> procs.PidSource:
            return lambda: [p.popen.pid for p in self.stack.processes if p.name.split(":")[0] == name and p.alive]

        broker = self.stack.broker.process
        assert broker is not None, "Kafka runs before the bench starts"
        postmaster = procs.postmaster_pid(self.stack.postgres.data_dir)
        return {
            "generator": lambda: [os.getpid()],
            **{name: service(name) for name in ("gateway", "orders", "payments")},
            "kafka": lambda: [broker.pid],
            "postgres": lambda: procs.with_children(postmaster),
        }

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.stack.ports, service)}"

    # Setup --------------------------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Funded accounts for the users, the pgbench database, and a first order settled end to end."""
        self.users = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(self.plan.users)]
        async with self.progress.phase(f"funding {len(self.users)} accounts"):
            await asyncio.gather(*(self._fund(user) for user in self.users))
        async with self.progress.phase("pgbench -i"):
            await self.pgbench.initialise()
        await self.warm_up()

    async def _fund(self, user: str) -> None:
        created = await self.gateway.request("POST", "/accounts", {"X-User-Id": user})
        deposited = await self.gateway.request("POST", "/accounts/deposit", {"X-User-Id": user, **JSON}, DEPOSIT_BODY)
        if (created.status, deposited.status) != (201, 200):
            raise RuntimeError(f"funding {user} failed: {created.status} {deposited.status} {deposited.body!r}")

    async def warm_up(self) -> None:
        """A few orders, settled end to end: the consumers have joined their groups, the pools are open."""
        created: Created = []
        async with self.progress.phase("warm-up"):
            await open_loop(20, 1, order_sender(self.gateway, self.users, created))
            left = await self.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)
        if left or not created:
            raise TimeoutError(f"warm-up: {len(created)} orders created, {left} still pending")

    # 1. The PostgreSQL bound --------------------------------------------------------------------------------

    async def postgres_bound(self) -> dict[str, Any]:
        postmaster = procs.postmaster_pid(self.stack.postgres.data_dir)
        before, cluster_before = self.groups.cpu_snapshot(), cluster_cpu_seconds(postmaster)
        async with self.progress.phase(f"pgbench -N -c {self.plan.clients}", self.plan.pgbench_seconds):
            result = await self.pgbench.run(self.plan.clients, self.plan.pgbench_seconds)
        after = self.groups.cpu_snapshot()
        cpu = procs.cpu_share(before, after)
        # The load generator here is pgbench itself, a child process, not this one; and pgbench's backends have
        # exited by now, so PostgreSQL's share counts the children the postmaster reaped.
        cpu["generator"] = result.cpu_share
        cpu["postgres"] = round((cluster_cpu_seconds(postmaster) - cluster_before) / (after.wall - before.wall), 3)
        return {**asdict(result), "orders_bound": round(result.orders_bound, 1), "cpu": cpu}

    # 2. Saturation ------------------------------------------------------------------------------------------

    async def saturation(self) -> dict[str, Any]:
        """Open-loop steps of rising rate until settled orders/s stop growing (``patience`` steps in a row
        without a 5 % gain), or POSTs start failing; then finer steps between the last one that kept up and the
        next, where the peak lies."""
        steps: list[dict[str, Any]] = []
        created: Created = []
        best, stale, rate = 0.0, 0, self.plan.first_rate
        while rate <= self.plan.max_rate and stale < self.plan.patience:
            step = await self._saturation_step(rate, created)
            steps.append(step)
            if step["settled_per_s"] > best * 1.05:
                best, stale = step["settled_per_s"], 0
            else:
                stale += 1
            if step["errors"] > 0.01 * step["sent"]:
                break
            rate = round(rate * self.plan.rate_factor)
        steps += await self._probe_the_knee(steps, created)
        left = await self._drain(created)
        peak = max(steps, key=lambda step: step["settled_per_s"])
        return {"peak_settled_per_s": peak["settled_per_s"], "peak": peak, "steps": steps, "left_pending": left}

    async def _probe_the_knee(self, ramp: list[dict[str, Any]], created: Created) -> list[dict[str, Any]]:
        """The ramp's steps (``rate_factor`` apart) bracket the peak: the last step that kept up settled what it was
        offered, the one after it was overloaded. Rates in between, ``probe_factor`` apart, each from a drained
        pipeline, until one does not keep up either."""
        kept_up = [index for index, step in enumerate(ramp) if _kept_up(step)]
        if not kept_up or kept_up[-1] + 1 >= len(ramp):
            return []
        rate, ceiling = ramp[kept_up[-1]]["offered_per_s"], ramp[kept_up[-1] + 1]["offered_per_s"]
        probes: list[dict[str, Any]] = []
        while (rate := round(rate * self.plan.probe_factor)) < ceiling:
            await self._drain(created)
            step = await self._saturation_step(rate, created) | {"probe": True}
            probes.append(step)
            if not _kept_up(step):
                break
        return probes

    async def _drain(self, created: Created) -> int:
        async with self.progress.phase("draining the backlog"):
            return await self.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)

    async def _saturation_step(self, rate: float, created: Created) -> dict[str, Any]:
        record = LoadRecord()
        before = self.groups.cpu_snapshot()
        async with self.progress.phase(f"saturation {rate:.0f}/s", self.plan.step_seconds, record.status):
            await open_loop(rate, self.plan.step_seconds, order_sender(self.gateway, self.users, created), record)
        cpu = procs.cpu_share(before, self.groups.cpu_snapshot())
        window_start = record.started_at + self.plan.step_warmup
        settled = await self.observer.settled_between(window_start, record.ended_at, self.users, record.started_at)
        return {
            "offered_per_s": rate,
            "sent": record.sent,
            "created": record.ok,
            "errors": record.errors,
            "errors_by_kind": dict(record.errors_by_kind),
            "answered_per_s": round(record.answered_per_s, 1),
            "settled_per_s": round(settled / (record.ended_at - window_start), 1),
            "post_ms": summary_ms(record.latencies_ms),
            "cpu": cpu,
        }

    # 3 + 5. Latency at a fixed rate, relay lag --------------------------------------------------------------

    async def fixed_rate(self, alongside: Alongside | None = None, label: str = "") -> tuple[dict[str, Any], Created]:
        """Orders at ``fixed_rate`` for ``fixed_seconds``, and how long each took to settle; ``alongside`` runs
        during the load, given the orders created so far and the load's duration."""
        created: Created = []
        record = LoadRecord()
        rate, seconds = self.plan.fixed_rate, self.plan.fixed_seconds
        sessions_before = await self.observer.sessions()
        before = self.groups.cpu_snapshot()
        load = open_loop(rate, seconds, order_sender(self.gateway, self.users, created), record)
        async with self.progress.phase(f"fixed rate {rate:.0f}/s {label}".rstrip(), seconds, record.status):
            await asyncio.gather(load, *([alongside(created, seconds)] if alongside else []))
        cpu = procs.cpu_share(before, self.groups.cpu_snapshot())
        sessions_after = await self.observer.sessions()
        async with self.progress.phase("waiting for settlement"):
            left = await self.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)
        ops_lag = await self._ops_publish_lag()
        settlement = await self.observer.settlement(ids_of(created))
        return {
            "rate": rate,
            "seconds": seconds,
            "sent": record.sent,
            "created": record.ok,
            "errors": record.errors,
            "errors_by_kind": dict(record.errors_by_kind),
            "orders": settlement["counts"],
            "left_pending": left,
            "settle_ms": settlement["ms"],
            "settle_stages_ms": await self.observer.settle_stages(ids_of(created), record.started_at),
            "post_ms": summary_ms(record.latencies_ms),
            "relay_ack_p99_ms": ops_lag,
            "relay_acked_ms": await self.observer.relay_acked_ms(record.started_at, time.time()),
            "cpu": cpu,
            "cpu_ms_per_order": per_unit_ms(cpu, record.answered_per_s),
            # A pooled service opens none; a service that connects per request opens one per request.
            "new_postgres_sessions": {db: sessions_after[db] - sessions_before.get(db, 0) for db in sessions_after},
        }, created

    async def _ops_publish_lag(self) -> dict[str, float | None]:
        """``outbox.publish_lag_p99_ms`` from each service's GET /ops: insert -> acked and marked published,
        over the last 1000 rows that service's relay published."""
        async with httpx.AsyncClient(timeout=10) as client:
            result = {}
            for service in ("orders", "payments"):
                ops = (await client.get(f"{self.url(service)}/ops")).json()
                result[service] = ops["outbox"]["publish_lag_p99_ms"]
        return result

    # 4. Gateway overhead ------------------------------------------------------------------------------------

    async def gateway_overhead(self, orders: Created) -> dict[str, Any]:
        """GET /orders/{id} in a closed loop, straight to Orders and then through the gateway."""
        result: dict[str, Any] = {"concurrency": self.plan.clients}
        for route, url in (("direct", self.url("orders")), ("gateway", self.stack.gateway_url)):
            client = Client(url, self.plan.clients)
            record = LoadRecord()
            before = self.groups.cpu_snapshot()
            async with self.progress.phase(f"GET /orders/{{id}} {route}", self.plan.gateway_seconds, record.status):
                await closed_loop(self.plan.clients, self.plan.gateway_seconds, order_reader(client, orders), record)
            client.close()
            cpu = procs.cpu_share(before, self.groups.cpu_snapshot())
            requests_per_s = record.ok / record.seconds
            result[route] = {
                "requests_per_s": round(requests_per_s, 1),
                "errors": record.errors,
                "errors_by_kind": dict(record.errors_by_kind),
                "ms": summary_ms(record.latencies_ms),
                "cpu": cpu,
                "cpu_ms_per_request": per_unit_ms(cpu, requests_per_s),
            }
        gateway_pid = self.groups.groups["gateway"]()
        result["gateway_open_sockets"] = procs.open_sockets(gateway_pid[0]) if gateway_pid else None
        result["ratio"] = round(result["gateway"]["requests_per_s"] / result["direct"]["requests_per_s"], 3)
        return result

    # One round of every measured figure ---------------------------------------------------------------------

    async def measure(self) -> dict[str, Any]:
        postgres = await self.postgres_bound()
        ceiling = await Ceiling(self).measure()
        saturation = await self.saturation()
        fixed, created = await self.fixed_rate()
        poison = await Poison(self).measure()
        gateway = await self.gateway_overhead(created)
        live = await LiveStatus(self).measure()
        # Last: the deletes leave dead rows and WAL behind, which the phase vacuums away but not all of.
        retention = await Retention(self).measure()
        return {
            "postgres": postgres,
            "ceiling": ceiling,
            "saturation": saturation,
            "fixed_rate": fixed,
            "poison": poison,
            "gateway": gateway,
            "live": live,
            "retention": retention,
        }

    async def restart(self, services: Sequence[str], spawn: Callable[[str], Process], how: str = "fresh") -> None:
        """These services stopped and started again by ``spawn``, healthy, and warmed up."""
        async with self.progress.phase(f"restarting {', '.join(services)} ({how})"):
            for process in reversed(list(self.stack.processes)):
                if process.name.split(":")[0] in services:
                    await asyncio.to_thread(self.stack.stop_process, process)
            for service in services:
                spawn(service)
            await asyncio.to_thread(self.stack.wait_healthy)
        # The old gateway's keep-alive connections died with it.
        self.gateway.close()
        self.gateway = Client(self.stack.gateway_url, self.plan.clients)
        await self.warm_up()

    # Profile ------------------------------------------------------------------------------------------------

    async def profile(self, output_dir: Path, stamp: str) -> dict[str, str]:
        """The services again, each under ``bench.profiled``, sampled only during a fixed-rate load. The
        reports land in ``output_dir``, which must exist."""
        outputs = {service: output_dir / f"{stamp}-profile-{service}.txt" for service in SERVICES}
        await self.restart(SERVICES, lambda service: self._spawn_profiled(service, outputs[service]), "pyinstrument")
        self._signal_services(signal.SIGUSR1)
        created: Created = []
        record = LoadRecord()
        rate, seconds = self.plan.profile_rate, self.plan.profile_seconds
        async with self.progress.phase(f"profiling at {rate:.0f}/s", seconds, record.status):
            await open_loop(rate, seconds, order_sender(self.gateway, self.users, created), record)
            await self.observer.wait_until_settled(ids_of(created), self.plan.drain_timeout)
        self._signal_services(signal.SIGUSR2)
        async with self.progress.phase("writing profiles"):
            await self._wait_for_files(list(outputs.values()))
        return {service: _shown(path) for service, path in outputs.items()}

    def _spawn_profiled(self, service: str, output: Path) -> Process:
        port = getattr(self.stack.ports, service)
        return self.stack.spawn(
            f"{service}:{port}",
            [sys.executable, "-m", "bench.profiled", service],
            f"http://127.0.0.1:{port}/health",
            {"BENCH_PROFILE_OUTPUT": str(output)},
        )

    def _signal_services(self, signum: signal.Signals) -> None:
        for process in self.stack.processes:
            process.popen.send_signal(signum)

    async def _wait_for_files(self, paths: list[Path], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not all(path.exists() for path in paths):
            if time.monotonic() > deadline:
                raise TimeoutError(f"profiles not written: {[str(p) for p in paths if not p.exists()]}")
            await asyncio.sleep(0.5)
