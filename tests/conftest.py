"""Session fixtures: one real PostgreSQL and one real Kafka per test session, on free ports in a temporary
directory, and the services as real processes in front of them. Everything stops at the end, also on failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, settings
from sanic import Sanic

from stack.local import ROOT, LocalStack, Ports
from tests.helpers import OPERATOR_TOKEN

Sanic.test_mode = True
# The machines are shared and noisy: Hypothesis judges what it generates, never how fast.
settings.register_profile("gozon", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("gozon")

ARTIFACTS = ROOT / "tests" / "artifacts"
FLAKY_USERS, BROKEN_USERS = "fault-flaky-", "fault-broken-"
FLAKY_ATTEMPTS = 2
# The services of the session fail the handling of these users' events on purpose (messaging.faults): a flaky
# user's command and result fail their first attempts, a broken user's command every one. Attempts run out fast.
TEST_ENV = {
    "GOZON_HANDLER_FAULTS": (
        f"payment.requested:{FLAKY_USERS}*={FLAKY_ATTEMPTS},payment.succeeded:{FLAKY_USERS}*={FLAKY_ATTEMPTS},"
        f"payment.requested:{BROKEN_USERS}*=always"
    ),
    "CONSUMER_RETRY_BUDGET_SECONDS": "2",
}
# Every process of the session, and the UI pages the tests drive in this one, know the operator token.
os.environ["GOZON_OPERATOR_TOKEN"] = OPERATOR_TOKEN


@pytest.fixture(scope="session")
def infra() -> Iterator[LocalStack]:
    """PostgreSQL + Kafka, migrated and with topics, shared by the whole session."""
    # Parents of a PostgreSQL data directory must be traversable by the server user: not pytest's tmp_path.
    root = Path(tempfile.mkdtemp(prefix="gozon-test-"))
    root.chmod(0o755)
    stack = LocalStack(
        data_dir=root,
        ports=Ports.free(),
        jar_cache=ROOT / ".data" / "kafka-dist",
        log_dir=ARTIFACTS / "logs",
        extra_env=dict(TEST_ENV),
    )
    try:
        stack.start_infrastructure()
        yield stack
    finally:
        stack.stop()
        if os.environ.get("GOZON_KEEP_TEST_DATA") != "1":
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(infra: LocalStack) -> Iterator[LocalStack]:
    """Payments, orders and the gateway as processes, one instance each."""
    infra.start_services()
    try:
        yield infra
    finally:
        infra.stop_services()


@pytest.fixture
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the gateway: the only public entry."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def user_id() -> str:
    """A fresh user per test: tests share the databases but never each other's rows."""
    return f"u-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def payments_db(infra: LocalStack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra.database_urls["payments"], min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def orders_db(infra: LocalStack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra.database_urls["orders"], min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def orders_owner_db(infra: LocalStack) -> AsyncIterator[asyncpg.Pool]:
    """The orders database as its owner, for tests that make scratch tables: the service's own role cannot. The
    service's role may use what the owner creates, as it may the migrations' tables."""
    pool = await asyncpg.create_pool(infra.migration_database_urls["orders"], min_size=1, max_size=2)
    yield pool
    await pool.close()
