"""An Apache Kafka broker owned by the project: jars resolved by Maven, KRaft storage formatted once, one JVM.

Nothing is downloaded except through Maven from the pom in ``kafka/``; the jars and Maven's local repository
are kept under the data directory, so a second start needs no network.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stack.postgres import MissingPrerequisite

log = logging.getLogger("stack.kafka")

KAFKA_DIR = Path(__file__).resolve().parents[1] / "kafka"
TOPIC_ALREADY_EXISTS = 36


def require(program: str, package_hint: str) -> str:
    if path := shutil.which(program):
        return path
    raise MissingPrerequisite(
        f"'{program}' not found: install {package_hint}, or run `docker compose up --build` instead"
    )


def ensure_jars(cache_dir: Path) -> Path:
    """Resolve the broker jars once into ``cache_dir/jars``; later calls find them there."""
    jars = cache_dir / "jars"
    marker = jars / ".resolved"
    if marker.exists():
        return jars
    mvn = require("mvn", "Maven (Debian: apt-get install maven)")
    require("java", "Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)")
    log.info("resolving Apache Kafka jars with Maven (first run only)")
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(KAFKA_DIR / "pom.xml"),
            f"-Dmaven.repo.local={cache_dir / 'maven'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={jars}",
        ],
        check=True,
    )
    marker.touch()
    return jars


class KafkaBroker:
    """A single broker+controller on 127.0.0.1 whose log lives in ``root/log``."""

    def __init__(self, root: Path, jars: Path, port: int, controller_port: int, heap: str = "512m") -> None:
        self.root = root
        self.jars = jars
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.log_dir = root / "log"
        self.config_file = root / "server.properties"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            require("java", "Java 17 or newer"),
            f"-Xmx{self.heap}",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.xml'}",
            "-cp",
            f"{self.jars}/*",
            main_class,
            *args,
        ]

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        template = (KAFKA_DIR / "server.properties").read_text()
        self.config_file.write_text(
            template.format(port=self.port, controller_port=self.controller_port, log_dir=self.log_dir)
        )

    def format_once(self) -> None:
        """Format KRaft storage only when it has never been formatted: reformatting would lose data."""
        self.write_config()
        if (self.log_dir / "meta.properties").exists():
            return
        out = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"), check=True, capture_output=True, text=True
        )
        cluster_id = out.stdout.strip().splitlines()[-1]
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file), "--standalone"
            ),
            check=True,
            capture_output=True,
        )
        log.info("formatted KRaft storage in %s", self.log_dir)

    def start(self, stdout: int | None = None) -> subprocess.Popen[bytes]:
        self.format_once()
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config_file)),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.process

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_until_ready(bootstrap_servers: str, within: float = 60) -> None:
    """Wait until the broker answers metadata requests."""
    deadline = time.monotonic() + within
    host, port = bootstrap_servers.split(",")[0].rsplit(":", 1)
    while not await _port_open(host, int(port)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka did not listen on {bootstrap_servers} within {within}s")
        await asyncio.sleep(0.2)
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
        finally:
            await admin.close()


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


async def create_topics(bootstrap_servers: str, names: list[str], partitions: int) -> None:
    """Create the topics that do not exist yet; an existing topic is left as it is."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {name} failed with Kafka error code {code}")
    finally:
        await admin.close()
