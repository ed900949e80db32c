"""The whole Gozon system on one machine, no Docker: used by ``make run``, the test fixtures and the benchmarks.

PostgreSQL (one cluster, one database and role per service), Kafka (one KRaft node), the topics, the migrations,
then each service as its own OS process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx

from messaging.topics import Topics
from servicekit.service.settings import ServiceSettings
from stack import kafka, migrate
from stack.postgres import PostgresCluster, ServiceDatabase

log = logging.getLogger("stack")

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("orders", "payments")


@dataclass(frozen=True)
class Ports:
    postgres: int = 5433
    kafka: int = 9092
    kafka_controller: int = 9093
    gateway: int = 8000
    orders: int = 8001
    payments: int = 8002
    swagger: int = 8082
    streamlit: int = 3000

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        defaults = cls()
        kafka_port = int(env.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{defaults.kafka}").rsplit(":", 1)[1])
        return cls(
            postgres=int(env.get("POSTGRES_PORT", defaults.postgres)),
            kafka=kafka_port,
            kafka_controller=int(env.get("KAFKA_CONTROLLER_PORT", defaults.kafka_controller)),
            gateway=int(env.get("GATEWAY_PORT", defaults.gateway)),
            orders=int(env.get("ORDERS_PORT", defaults.orders)),
            payments=int(env.get("PAYMENTS_PORT", defaults.payments)),
            swagger=int(env.get("SWAGGER_PORT", defaults.swagger)),
            streamlit=int(env.get("STREAMLIT_PORT", defaults.streamlit)),
        )

    @classmethod
    def free(cls) -> Ports:
        """Ports nothing listens on now: for tests and benchmarks that must not collide with ``make run``."""
        return cls(*free_ports(8))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def database_url(service: str, port: int, env: Mapping[str, str] = os.environ) -> str:
    """The URL the service itself uses, from the environment (or its default), pointed at this cluster's port."""
    return _on_port(service_settings(service, env).database_url, port)


def migration_database_url(service: str, port: int, env: Mapping[str, str] = os.environ) -> str:
    """The URL of the database's owner role, which runs the migrations, pointed at this cluster's port."""
    return _on_port(service_settings(service, env).migration_database_url, port)


def service_settings(service: str, env: Mapping[str, str]) -> ServiceSettings:
    return ServiceSettings.from_env(service, 0, env)


def _on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    health_url: str | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class LocalStack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    jar_cache: Path | None = None
    log_dir: Path | None = None
    admin_password: str = "gozon-local-admin"
    extra_env: dict[str, str] = field(default_factory=dict)
    topics: Topics = field(default_factory=lambda: Topics.from_env(os.environ))

    def __post_init__(self) -> None:
        self.postgres = PostgresCluster(self.data_dir / "postgres", self.ports.postgres, self.admin_password)
        jars = kafka.ensure_jars(self.jar_cache or self.data_dir / "kafka-dist")
        self.broker = kafka.KafkaBroker(self.data_dir / "kafka", jars, self.ports.kafka, self.ports.kafka_controller)
        self.processes: list[Process] = []

    @property
    def database_urls(self) -> dict[str, str]:
        return {
            service: database_url(service, self.ports.postgres, {**os.environ, **self.extra_env})
            for service in SERVICES
        }

    @property
    def migration_database_urls(self) -> dict[str, str]:
        return {
            service: migration_database_url(service, self.ports.postgres, {**os.environ, **self.extra_env})
            for service in SERVICES
        }

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def env(self) -> dict[str, str]:
        """The environment every service process gets: where its database, Kafka and peers are."""
        urls = self.database_urls
        return {
            **os.environ,
            "ORDERS_DATABASE_URL": urls["orders"],
            "PAYMENTS_DATABASE_URL": urls["payments"],
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "PAYMENT_COMMANDS_TOPIC": self.topics.payment_commands,
            "PAYMENT_RESULTS_TOPIC": self.topics.payment_results,
            "GATEWAY_PORT": str(self.ports.gateway),
            "ORDERS_PORT": str(self.ports.orders),
            "PAYMENTS_PORT": str(self.ports.payments),
            "SWAGGER_PORT": str(self.ports.swagger),
            "ORDERS_URL": f"http://127.0.0.1:{self.ports.orders}",
            "PAYMENTS_URL": f"http://127.0.0.1:{self.ports.payments}",
            "GATEWAY_URL": self.gateway_url,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    # Infrastructure ------------------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        self.postgres.init()
        if not self.postgres.is_running():
            self.postgres.start()
        urls, owner_urls = self.database_urls, self.migration_database_urls
        databases = [ServiceDatabase.from_urls(urls[service], owner_urls[service]) for service in SERVICES]
        asyncio.run(self.postgres.ensure_service_databases(databases))
        for service, database in zip(SERVICES, databases, strict=True):
            asyncio.run(migrate.migrate(owner_urls[service], service, service_role=database.service.role))

    def start_kafka(self) -> None:
        with self._log_target("kafka") as log_file:
            self.broker.start(stdout=log_file)
        asyncio.run(kafka.wait_until_ready(self.broker.bootstrap_servers))
        asyncio.run(kafka.create_topics(self.broker.bootstrap_servers, self.topics.all(), self.topics.partitions))

    def start_infrastructure(self) -> None:
        self.start_postgres()
        self.start_kafka()

    # Services ------------------------------------------------------------------------------------------------

    def spawn(
        self, name: str, command: list[str], health_url: str | None = None, env: Mapping[str, str] | None = None
    ) -> Process:
        with self._log_target(name) as log_file:
            popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**self.env(), **(env or {})},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, health_url)
        self.processes.append(process)
        return process

    def spawn_service(self, service: str, port: int | None = None, env: Mapping[str, str] | None = None) -> Process:
        """One instance of ``orders``, ``payments`` or ``gateway`` (another port makes another instance)."""
        port = port or getattr(self.ports, service)
        instance_env = {f"{service.upper()}_PORT": str(port), **(env or {})}
        return self.spawn(
            f"{service}:{port}", [sys.executable, "-m", service], f"http://127.0.0.1:{port}/health", instance_env
        )

    def start_services(self, with_ui: bool = False) -> None:
        for service in ("payments", "orders", "gateway"):
            self.spawn_service(service)
        if with_ui:
            self.spawn(
                "swagger", [sys.executable, "-m", "gateway.docs"], f"http://127.0.0.1:{self.ports.swagger}/health"
            )
            self.spawn(
                "streamlit",
                streamlit_command(self.ports.streamlit),
                f"http://127.0.0.1:{self.ports.streamlit}/_stcore/health",
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            while process.health_url and not _answers(process.health_url):
                if not process.alive:
                    raise RuntimeError(f"{process.name} exited with code {process.popen.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{process.name} did not become healthy within {timeout}s")
                time.sleep(0.1)

    # Stopping ------------------------------------------------------------------------------------------------

    def stop_process(self, process: Process, timeout: float = 15) -> None:
        if process.alive:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0fs; killing it", process.name, timeout)
                process.popen.kill()
                process.popen.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_services(self) -> None:
        for process in reversed(list(self.processes)):
            self.stop_process(process)

    def stop(self) -> None:
        """Services first (they flush and commit), then Kafka, then PostgreSQL."""
        self.stop_services()
        self.broker.stop()
        self.postgres.stop()

    def _log_target(self, name: str) -> contextlib.AbstractContextManager[IO[bytes] | None]:
        """The child's own log file (the child keeps its copy open), or the terminal when there is no log_dir."""
        if self.log_dir is None:
            return contextlib.nullcontext()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{name.replace(':', '-')}.log", "ab")


def streamlit_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "streamlit_app" / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
