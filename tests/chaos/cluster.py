"""The system under test: its own PostgreSQL and Kafka, two instances each of orders and payments and one gateway
in front of them, every one a separate OS process that a fault can kill, pause or restart on the same port."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack import kafka
from stack.local import ROOT, LocalStack, Ports, Process, free_ports
from tests.chaos import poison
from tests.chaos.config import ChaosConfig

SERVICES = ("orders", "payments")
RETENTION_SECONDS = 7 * 86400
RELAY_BATCH = 10
STARTUP_TIMEOUT = 60.0


class InstanceFailed(RuntimeError):
    """A service instance exited while it was expected to come up."""


@dataclass
class Instance:
    name: str
    service: str
    port: int
    process: Process | None = None
    paused: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ChaosCluster:
    def __init__(self, config: ChaosConfig, log_dir: Path) -> None:
        self.log_dir = log_dir
        # Parents of a PostgreSQL data directory must be traversable by the server user.
        self.root = Path(tempfile.mkdtemp(prefix="gozon-chaos-"))
        self.root.chmod(0o755)
        ports = Ports.free()
        second_orders, second_payments = free_ports(2)
        self.instances = {
            "orders-a": Instance("orders-a", "orders", ports.orders),
            "orders-b": Instance("orders-b", "orders", second_orders),
            "payments-a": Instance("payments-a", "payments", ports.payments),
            "payments-b": Instance("payments-b", "payments", second_payments),
        }
        self.stack = LocalStack(
            data_dir=self.root,
            ports=ports,
            jar_cache=ROOT / ".data" / "kafka-dist",
            log_dir=log_dir,
            extra_env=self._env(config),
        )
        self.gateway: Process | None = None

    def _env(self, config: ChaosConfig) -> dict[str, str]:
        env = {
            "ORDERS_URL": ",".join(i.url for i in self.of("orders")),
            "PAYMENTS_URL": ",".join(i.url for i in self.of("payments")),
            "KAFKA_MAX_POLL_INTERVAL_MS": str(config.max_poll_interval_ms),
            "KAFKA_SESSION_TIMEOUT_MS": str(config.session_timeout_ms),
            "KAFKA_HEARTBEAT_INTERVAL_MS": str(config.heartbeat_interval_ms),
            "GOZON_FAULT_POINTS": "",
            "GOZON_HANDLER_FAULTS": poison.handler_faults(config),
            "ORDERS_PAYMENT_DEADLINE_SECONDS": str(config.payment_deadline),
            "CONSUMER_RETRY_BUDGET_SECONDS": str(config.retry_budget),
            "CONSUMER_MAX_ATTEMPTS": str(config.max_attempts),
            "LOG_LEVEL": "INFO",
        }
        for service in SERVICES:
            # Four instances share one cluster's connection limit; the ordering check needs every outbox row.
            env[f"{service.upper()}_DB_POOL_SIZE"] = "8"
            env[f"{service.upper()}_RETENTION_SECONDS"] = str(RETENTION_SECONDS)
            # Small batches make the two relays of a service split a backlog between them, as they would under
            # heavy load: that is where per-user order could break.
            env[f"{service.upper()}_RELAY_BATCH"] = str(RELAY_BATCH)
        return env

    def of(self, service: str) -> list[Instance]:
        return [instance for instance in self.instances.values() if instance.service == service]

    @property
    def gateway_url(self) -> str:
        return self.stack.gateway_url

    @property
    def bootstrap_servers(self) -> str:
        return self.stack.broker.bootstrap_servers

    def database_url(self, service: str) -> str:
        return self.stack.database_urls[service]

    # Whole cluster --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.stack.start_infrastructure)
        await asyncio.gather(*(self.spawn(instance) for instance in self.instances.values()))
        self.gateway = self.stack.spawn_service("gateway")
        await wait_healthy(self.gateway)

    def stop(self, keep_data: bool = False) -> None:
        for instance in self.instances.values():
            if instance.paused:
                self.resume(instance)
        self.stack.stop()
        if not keep_data:
            shutil.rmtree(self.root, ignore_errors=True)

    # Service instances ----------------------------------------------------------------------------------------

    async def spawn(self, instance: Instance, fault_points: str = "") -> None:
        """Start the instance on its port and wait until it answers; ``fault_points`` arms named fault points."""
        env = {"GOZON_FAULT_POINTS": fault_points}
        instance.process = self.stack.spawn_service(instance.service, port=instance.port, env=env)
        if not fault_points:
            await wait_healthy(instance.process)

    async def fix_handlers(self) -> None:
        """As a deploy of the fixed code would: every instance restarted without the handler faults."""
        self.stack.extra_env["GOZON_HANDLER_FAULTS"] = ""
        for instance in self.instances.values():
            await self.stop_gracefully(instance)
            await self.spawn(instance)

    async def kill(self, instance: Instance) -> None:
        """SIGKILL, as a crash would: no shutdown hook runs, nothing is flushed or committed."""
        process = self._process(instance)
        process.popen.kill()
        await asyncio.to_thread(process.popen.wait)
        self.stack.stop_process(process)

    async def stop_gracefully(self, instance: Instance) -> None:
        await asyncio.to_thread(self.stack.stop_process, self._process(instance))

    async def exit_code(self, instance: Instance, timeout: float) -> int | None:
        """Wait for the instance to exit on its own; None if it still runs after ``timeout``."""
        process = self._process(instance)
        try:
            return await asyncio.to_thread(process.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            return None

    def forget(self, instance: Instance) -> None:
        """Drop an instance that exited on its own from the stack's process list."""
        self.stack.stop_process(self._process(instance))

    def pause(self, instance: Instance) -> None:
        os.kill(self._process(instance).popen.pid, signal.SIGSTOP)
        instance.paused = True

    def resume(self, instance: Instance) -> None:
        os.kill(self._process(instance).popen.pid, signal.SIGCONT)
        instance.paused = False

    def _process(self, instance: Instance) -> Process:
        assert instance.process is not None, f"{instance.name} was never started"
        return instance.process

    # Infrastructure -------------------------------------------------------------------------------------------

    async def kill_broker(self) -> None:
        await asyncio.to_thread(self.stack.broker.kill)

    async def start_broker(self) -> None:
        """The same broker on the same data and port, as after a machine restart."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "kafka.log").open("ab") as log:
            await asyncio.to_thread(self.stack.broker.start, log.fileno())
        await kafka.wait_until_ready(self.bootstrap_servers)

    async def stop_postgres(self) -> None:
        """Immediate mode: no checkpoint, every connection cut, crash recovery on the next start."""
        await asyncio.to_thread(self.stack.postgres.stop, "immediate")

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.stack.postgres.start)


async def wait_healthy(process: Process, timeout: float = STARTUP_TIMEOUT) -> None:
    assert process.health_url is not None
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if not process.alive:
                raise InstanceFailed(f"{process.name} exited with code {process.popen.returncode} while starting")
            try:
                if (await client.get(process.health_url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{process.name} did not answer /health within {timeout:.0f}s")
            await asyncio.sleep(0.1)
