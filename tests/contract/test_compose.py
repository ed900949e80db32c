"""``docker-compose.yml`` and the Dockerfiles, checked statically (no Docker engine is needed): the services are
configured only with variables the code reads, publish only the documented ports, are built from Dockerfiles that
exist and expose them, and every image is pinned."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from messaging.topics import Topics
from stack.local import ROOT
from stack.postgres import SERVER_SETTINGS

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
BUILT = sorted(name for name, service in SERVICES.items() if "build" in service)
HOST_ACCESS: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.host-access.yml").read_text())
# The README's ports table: what a user of the compose file reaches from the host. Kafka and PostgreSQL only
# with the host-access override.
PUBLISHED_PORTS = {3000, 8000, 8082}
HOST_ACCESS_PORTS = {5432, 9092}
LOOPBACK_BIND = "${GOZON_BIND_ADDRESS:-127.0.0.1}"
# A published port: "<bind address>:<host port>:<container port>", both addresses from variables.
PORT_MAPPING = re.compile(r"^(?P<bind>\$\{[A-Z_]+:-[^}]+\}):\$\{(?P<variable>[A-Z_]+):-(?P<host>\d+)\}:(?P<port>\d+)$")
CODE_PACKAGES = ("gateway", "orders", "payments", "messaging", "servicekit", "stack", "streamlit_app")
SETTINGS_MODULES = ("gateway.settings", "orders.settings", "payments.settings", "streamlit_app.settings")


class RecordingEnv(dict[str, str]):
    """An empty environment that remembers every variable asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return False


def settings_variables() -> set[str]:
    """Every variable the services' settings loaders read: each function of a settings module (or classmethod of
    a class in it) that takes ``env`` is called with a recording environment."""
    env = RecordingEnv()
    for module in map(importlib.import_module, SETTINGS_MODULES):
        for loader in _env_loaders(module):
            loader(env=env)
    return env.asked


def _env_loaders(module: ModuleType) -> Iterator[Callable[..., object]]:
    """The module's own functions, and classmethods of its own classes, that take ``env``."""
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            functions = [value]
        elif inspect.isclass(value):
            functions = [method for _, method in inspect.getmembers(value, inspect.ismethod)]
        else:
            continue
        yield from (function for function in functions if "env" in inspect.signature(function).parameters)


def environ_reads() -> set[str]:
    """Names read straight from ``os.environ`` anywhere in the code: ``os.environ.get("X")``, ``os.environ["X"]``,
    ``os.getenv("X")``."""
    return {
        key
        for package in CODE_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if (key := _environ_key(node)) is not None
    }


def _environ_key(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
        key = node.args[0]
    elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        key = node.slice
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


DOCKERFILE = (ROOT / "Dockerfile").read_text()
STAGE = re.compile(r"^FROM (?P<base>\S+) AS (?P<name>\S+)$", re.MULTILINE)
# What each stage's process imports, and what it must not: the packages of the other processes' extras.
PROCESS_MODULES = {
    "orders": ["orders.app"],
    "payments": ["payments.app"],
    "gateway": ["gateway.app", "gateway.docs"],
    "streamlit": ["streamlit_app.api_client", "streamlit_app.tables"],
}
FOREIGN_PACKAGES = {
    "orders": {"streamlit", "aiohttp", "swagger_ui_bundle", "playwright", "httpx"},
    "payments": {"streamlit", "aiohttp", "swagger_ui_bundle", "playwright", "httpx"},
    "gateway": {"streamlit", "tortoise", "asyncpg", "aiokafka", "playwright", "httpx"},
    "streamlit": {"tortoise", "asyncpg", "aiokafka", "sanic", "aiohttp", "playwright", "httpx"},
}
EXTRA_OF_STAGE = {"orders": "service", "payments": "service", "gateway": "gateway", "streamlit": "ui"}


def stages() -> dict[str, tuple[str, str]]:
    """Stage name -> (what it starts from, its own text)."""
    matches = list(STAGE.finditer(DOCKERFILE))
    ends = [match.start() for match in matches[1:]] + [len(DOCKERFILE)]
    return {
        match["name"]: (match["base"], DOCKERFILE[match.start() : end])
        for match, end in zip(matches, ends, strict=True)
    }


def dockerfile(service: str) -> str:
    """The text of the stage ``service`` is built from and of every stage it starts from, base first."""
    texts, name, known = [], SERVICES[service]["build"]["target"], stages()
    while name in known:
        base, text = known[name]
        texts.insert(0, text)
        name = base
    return "".join(texts)


def exposed_ports(text: str) -> set[int]:
    return {int(port) for line in re.findall(r"^EXPOSE (.+)$", text, re.MULTILINE) for port in line.split()}


def port_mappings(service: dict[str, Any]) -> list[re.Match[str]]:
    mappings = [PORT_MAPPING.match(str(mapping)) for mapping in service.get("ports", [])]
    assert None not in mappings, service.get("ports")
    return [mapping for mapping in mappings if mapping is not None]


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Host port (the variable's default) -> container port."""
    return {int(mapping["host"]): int(mapping["port"]) for mapping in port_mappings(service)}


def peers_named(value: str) -> set[str]:
    """The hosts of a ``host:port`` or URL setting (comma-separated lists too)."""
    hosts = set()
    for item in str(value).split(","):
        address = urlsplit(item if "://" in item else f"//{item}")
        if address.port is not None and address.hostname:
            hosts.add(address.hostname)
    return hosts


def test_the_services_set_only_variables_the_code_reads() -> None:
    known = settings_variables() | environ_reads()

    for name in BUILT:
        assert set(SERVICES[name].get("environment", {})) <= known, name


def test_the_variable_scan_finds_the_settings_it_must() -> None:
    known = settings_variables() | environ_reads()

    assert {"ORDERS_DATABASE_URL", "PAYMENTS_HOST", "KAFKA_BOOTSTRAP_SERVERS", "ORDERS_URL", "SWAGGER_PORT"} <= known
    assert {"LOG_LEVEL", "GATEWAY_URL", "GOZON_FAULT_POINTS"} <= known


def test_only_the_documented_ports_are_published() -> None:
    published = [port for service in SERVICES.values() for port in published_ports(service)]

    assert sorted(published) == sorted(PUBLISHED_PORTS)


def test_kafka_and_postgresql_are_published_only_by_the_host_access_override() -> None:
    services = HOST_ACCESS["services"]
    container_ports = {port for service in services.values() for port in published_ports(service).values()}

    assert set(services) <= set(SERVICES)
    assert container_ports == HOST_ACCESS_PORTS
    assert all(SERVICES[name]["image"].startswith(("postgres:", "apache/kafka:")) for name in services)


def test_every_published_port_binds_the_loopback_by_default_on_a_host_port_from_a_variable() -> None:
    mappings = [m for config in (SERVICES, HOST_ACCESS["services"]) for s in config.values() for m in port_mappings(s)]
    variables = [mapping["variable"] for mapping in mappings]

    assert mappings
    assert {mapping["bind"] for mapping in mappings} == {LOOPBACK_BIND}
    assert all(variable.endswith("_HOST_PORT") for variable in variables)
    assert len(set(variables)) == len(variables)


@pytest.mark.parametrize("name", BUILT)
def test_a_built_service_exposes_and_listens_on_the_port_it_publishes(name: str) -> None:
    service = SERVICES[name]
    listens = {int(value) for key, value in service.get("environment", {}).items() if key.endswith("_PORT")}

    for container_port in published_ports(service).values():
        assert container_port in exposed_ports(dockerfile(name))
    assert listens <= exposed_ports(dockerfile(name))


@pytest.mark.parametrize("name", BUILT)
def test_a_built_service_comes_from_its_dockerfile_as_a_non_root_user(name: str) -> None:
    build = SERVICES[name]["build"]
    text = dockerfile(name)

    assert Path(ROOT / build["context"]).resolve() == ROOT
    assert set(build) == {"context", "target"}
    assert text.startswith("FROM ${PYTHON_IMAGE} AS python")
    assert "COPY pyproject.toml" in text
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


def test_the_python_base_image_is_an_official_one_pinned_to_its_full_version() -> None:
    pins = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)

    assert len(pins) == 1
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", pins[0])


@pytest.mark.parametrize("name", BUILT)
def test_each_image_installs_the_dependencies_of_its_own_process_only(name: str) -> None:
    installs = re.findall(r"requirements-of (\S+) ", dockerfile(name))
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    assert installs == [EXTRA_OF_STAGE[SERVICES[name]["build"]["target"]]]
    assert installs[0] in extras


@pytest.mark.parametrize("stage", sorted(PROCESS_MODULES))
def test_each_process_imports_nothing_from_the_other_processes_extras(stage: str) -> None:
    """What lets each image leave out the others' dependencies; the compose test runs the images."""
    imports = "; ".join(f"import {module}" for module in PROCESS_MODULES[stage])
    script = f"import sys; {imports}; print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)

    assert set(loaded.stdout.split()) & FOREIGN_PACKAGES[stage] == set()


def test_every_long_running_service_restarts_on_failure() -> None:
    for name, service in SERVICES.items():
        expected = "no" if name == "kafka-topics" else "unless-stopped"
        assert service.get("restart") == expected, name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    image = SERVICES[name]["image"]
    _, _, tag = image.rpartition(":")

    assert ":" in image
    assert "/" not in tag
    assert tag
    assert tag != "latest"


def test_the_services_bind_every_interface_in_their_containers() -> None:
    for name in BUILT:
        environment = SERVICES[name].get("environment", {})
        hosts = {value for key, value in environment.items() if key.endswith("_HOST")}
        assert hosts <= {"0.0.0.0"}, name
    for name in ("orders", "payments", "gateway", "swagger"):
        assert "0.0.0.0" in SERVICES[name]["environment"].values(), name


def test_every_peer_a_service_is_pointed_at_is_a_compose_service() -> None:
    for name in BUILT:
        for key, value in SERVICES[name].get("environment", {}).items():
            if key.endswith(("_URL", "_BOOTSTRAP_SERVERS")):
                assert set(SERVICES) >= peers_named(value) != set(), (name, key)


def test_services_start_only_once_what_they_need_is_ready() -> None:
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            needed = "healthcheck" in SERVICES[dependency]
            expected = "service_healthy" if needed else "service_completed_successfully"
            assert rule["condition"] == expected, (name, dependency)
        assert "healthcheck" in service or service.get("restart") == "no", name


def test_the_topic_creator_creates_every_topic_with_its_partitions() -> None:
    topics = Topics()
    script = " ".join(SERVICES["kafka-topics"]["command"])

    for topic in topics.all():
        assert re.search(rf"(?<![\w.-]){re.escape(topic)}(?![\w.-])", script), topic
    assert f"--partitions {topics.partitions}" in script


def test_the_services_and_the_topic_creator_use_the_same_topics() -> None:
    topics = Topics()

    for name in ("orders", "payments"):
        environment = SERVICES[name]["environment"]
        assert environment["PAYMENT_COMMANDS_TOPIC"] == topics.payment_commands
        assert environment["PAYMENT_RESULTS_TOPIC"] == topics.payment_results


def test_docker_builds_leave_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".venv*", ".data", "tests", "bench", ".git"} <= set(ignored)


@pytest.mark.parametrize("name", sorted(name for name, service in SERVICES.items() if "postgres" in service["image"]))
def test_every_database_server_runs_with_the_local_stacks_settings(name: str) -> None:
    command = SERVICES[name].get("command", [])
    settings = [command[i + 1] for i, word in enumerate(command[:-1]) if word == "-c"]
    assert command[:1] == ["postgres"]
    assert settings == list(SERVER_SETTINGS)
