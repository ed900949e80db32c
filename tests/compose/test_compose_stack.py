"""``docker compose up --build --wait`` on a real Docker engine, used through the published ports as a user would.

Part of ``make test`` (``make compose-test`` runs it alone; ``GOZON_COMPOSE_TEST=0`` leaves it out). Where Docker
cannot be had it is skipped with the reason. The stack is a project of its own on free host ports, so it runs
beside a ``make run`` stack on the default ones.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from stack.local import ROOT, free_ports
from tests.compose import engine, images
from tests.helpers import as_user, eventually, funded_account, settled

pytestmark = [
    pytest.mark.compose,
    pytest.mark.skipif(os.environ.get("GOZON_COMPOSE_TEST") == "0", reason="GOZON_COMPOSE_TEST=0 leaves it out"),
    # A cold run builds the images; pytest's default per-test timeout would cut the first test's setup short.
    pytest.mark.timeout(1200),
]

LOG = ROOT / "tests" / "artifacts" / "compose" / "dockerd.log"
HOST_PORTS = ("GATEWAY_HOST_PORT", "STREAMLIT_HOST_PORT", "SWAGGER_HOST_PORT")
UP_TIMEOUT = 600


@dataclass(frozen=True)
class ComposeStack:
    project: str
    env: dict[str, str]

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{self.env[variable]}"

    def compose(self, *arguments: str, timeout: float = UP_TIMEOUT + 60) -> str:
        command = ("docker", "compose", "-p", self.project, *arguments)
        result = engine.run(*command, timeout=timeout, cwd=ROOT, env=self.env)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr[-3000:]}\n{self.logs()}"
        return result.stdout

    def up(self, *arguments: str) -> None:
        self.compose("up", *arguments, "--wait", "--wait-timeout", str(UP_TIMEOUT))

    def logs(self) -> str:
        command = ("docker", "compose", "-p", self.project, "logs", "--no-color", "--tail", "40")
        return engine.run(*command, timeout=60, cwd=ROOT, env=self.env).stdout

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def sql(self, database: str, role: str, password: str, statement: str) -> subprocess.CompletedProcess[str]:
        """``statement`` run in ``database``'s container as ``role``, over TCP with its password as a service would."""
        psql = (
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            role,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        )
        psql += ("-tAc", statement)
        command = ("docker", "compose", "-p", self.project, "exec", "-T", "-e", f"PGPASSWORD={password}")
        return engine.run(*command, f"{database}-db", *psql, cwd=ROOT, env=self.env, timeout=60)


async def stopped(container: str) -> bool:
    return engine.run_checked("docker", "inspect", "-f", "{{.State.Running}}", container).strip() == "false"


def docker_ready() -> engine.Daemon:
    """The daemon, the Compose CLI and the stand-in base images; skips the module where they cannot be had."""
    try:
        daemon = engine.start_daemon(LOG)
    except engine.Unavailable as error:
        pytest.skip(f"no Docker engine: {error}")
    try:
        engine.ensure_compose()
        images.ensure_python_standins()
        images.ensure_postgres_standins()
        images.ensure_kafka_standins()
    except engine.Unavailable as error:
        daemon.stop()
        pytest.skip(f"no Compose CLI or stand-in images: {error}")
    return daemon


@pytest.fixture(scope="module")
def compose_stack() -> Iterator[ComposeStack]:
    daemon = docker_ready()
    try:
        ports = dict(zip(HOST_PORTS, map(str, free_ports(len(HOST_PORTS))), strict=True))
        env = {**os.environ, "GOZON_BIND_ADDRESS": "127.0.0.1", **ports}
        stack = ComposeStack(f"gozon-test-{uuid.uuid4().hex[:8]}", env)
        try:
            stack.up("--build")
            yield stack
        finally:
            stack.compose("down", "-v", "--remove-orphans")
    finally:
        daemon.stop()


@pytest.fixture
async def api(compose_stack: ComposeStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=compose_stack.url("GATEWAY_HOST_PORT"), timeout=30) as client:
        yield client


@pytest.fixture
def user_id() -> str:
    return f"compose-{uuid.uuid4().hex[:12]}"


async def place(api: httpx.AsyncClient, user: str, amount: str) -> dict:
    response = await api.post("/orders", json={"amount": amount, "description": "compose"}, headers=as_user(user))
    assert response.status_code == 201, response.text
    return response.json()


async def balance(api: httpx.AsyncClient, user: str) -> str:
    return (await api.get("/accounts/balance", headers=as_user(user))).json()["balance"]


@pytest.mark.parametrize(
    "arguments",
    [("-f", "docker-compose.yml"), ("-f", "docker-compose.yml", "-f", "docker-compose.host-access.yml")],
    ids=["compose file", "with host access"],
)
def test_compose_v1_and_v2_both_accept_the_file(arguments: tuple[str, ...]) -> None:
    try:
        engine.ensure_compose()
        v1 = engine.ensure_compose_v1()
    except engine.Unavailable as error:
        pytest.skip(f"no Compose CLI: {error}")
    for command in ((v1, *arguments), ("docker", "compose", *arguments)):
        result = engine.run(*command, "config", "-q", cwd=ROOT, timeout=60)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"


SERVICE_PASSWORDS = {"orders": "orders-local-pw", "payments": "payments-local-pw"}
REFUSED = {
    "orders": ["CREATE TABLE intruder (id int)", "DROP TABLE outbox", "SELECT * FROM schema_migrations"],
    "payments": ["CREATE TABLE intruder (id int)", "DELETE FROM payments", "DELETE FROM deposits", "TRUNCATE deposits"],
}


@pytest.mark.parametrize(
    ("database", "statement"), [(database, sql) for database, statements in REFUSED.items() for sql in statements]
)
def test_a_services_role_in_compose_changes_no_schema_and_deletes_no_money_record(
    compose_stack: ComposeStack, database: str, statement: str
) -> None:
    result = compose_stack.sql(database, database, SERVICE_PASSWORDS[database], statement)

    assert result.returncode != 0
    assert "ERROR:  42501:" in result.stderr, result.stderr  # insufficient_privilege


@pytest.mark.parametrize("database", sorted(SERVICE_PASSWORDS))
def test_the_services_log_in_as_their_own_roles_none_a_superuser(compose_stack: ComposeStack, database: str) -> None:
    password = SERVICE_PASSWORDS[database]
    who = "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user"
    sessions = "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE datname = current_database()"

    assert compose_stack.sql(database, database, password, who).stdout.split() == [database, "false"]
    assert compose_stack.sql(database, database, password, sessions).stdout.strip() == database


async def test_a_paid_order_a_failed_order_and_nobody_elses_order(api: httpx.AsyncClient, user_id: str) -> None:
    await funded_account(api, user_id, "10.00")

    paid = await settled(api, user_id, (await place(api, user_id, "4.00"))["id"], timeout=60)
    failed = await settled(api, user_id, (await place(api, user_id, "50.00"))["id"], timeout=60)

    assert paid["status"] == "PAID"
    assert (failed["status"], failed["failure_reason"]) == ("FAILED", "INSUFFICIENT_FUNDS")
    assert await balance(api, user_id) == "6.00"
    assert (await api.get(f"/orders/{paid['id']}", headers=as_user(f"{user_id}-other"))).status_code == 404


async def test_the_ui_and_the_swagger_ui_answer(compose_stack: ComposeStack) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        ui = await client.get(f"{compose_stack.url('STREAMLIT_HOST_PORT')}/_stcore/health")
        swagger = await client.get(f"{compose_stack.url('SWAGGER_HOST_PORT')}/")
        spec = await client.get(f"{compose_stack.url('SWAGGER_HOST_PORT')}/openapi.yaml")

    assert (ui.status_code, ui.text) == (200, "ok")
    assert swagger.status_code == 200
    assert "swagger" in swagger.text.lower()
    assert (spec.status_code, spec.text.startswith("openapi:")) == (200, True)


async def test_accounts_and_orders_outlive_down_and_up(compose_stack: ComposeStack, user_id: str) -> None:
    async with httpx.AsyncClient(base_url=compose_stack.url("GATEWAY_HOST_PORT"), timeout=30) as api:
        await funded_account(api, user_id, "10.00")
        order = await settled(api, user_id, (await place(api, user_id, "3.00"))["id"], timeout=60)

    compose_stack.compose("down")
    compose_stack.up()

    # A client of its own: the old one's pooled connections went with the containers.
    async with httpx.AsyncClient(base_url=compose_stack.url("GATEWAY_HOST_PORT"), timeout=30) as api:
        assert await balance(api, user_id) == "7.00"
        again = (await api.get(f"/orders/{order['id']}", headers=as_user(user_id))).json()
    assert (order["status"], again["status"]) == ("PAID", "PAID")


async def test_orders_placed_while_payments_is_down_settle_once_it_is_back(
    compose_stack: ComposeStack, api: httpx.AsyncClient, user_id: str
) -> None:
    await funded_account(api, user_id, "10.00")
    payments = compose_stack.container("payments")

    engine.run_checked("docker", "kill", payments)
    await eventually(lambda: stopped(payments), timeout=30)
    placed = [await place(api, user_id, amount) for amount in ("2.00", "3.00", "50.00")]
    still = [(await api.get(f"/orders/{order['id']}", headers=as_user(user_id))).json() for order in placed]
    compose_stack.up()
    outcomes = [(await settled(api, user_id, order["id"], timeout=120))["status"] for order in placed]

    assert {order["status"] for order in placed + still} == {"PENDING"}
    assert outcomes == ["PAID", "PAID", "FAILED"]
    assert await balance(api, user_id) == "5.00"
