"""Fixtures for tests that use a service's models in-process, against the session's real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise, connections

from orders import settings
from stack.local import LocalStack


@pytest.fixture(scope="session")
async def orders_orm(infra: LocalStack) -> AsyncIterator[None]:
    config = settings.from_env({"ORDERS_DATABASE_URL": infra.database_urls["orders"]})
    await Tortoise.init(config=config.tortoise_config("orders.models"), _enable_global_fallback=True)
    yield
    await connections.close_all()
