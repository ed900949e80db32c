"""What may import what: the HTTP plumbing and the gateway pull in no ORM, database driver or Kafka client."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stack.local import ROOT

DATABASE_AND_KAFKA = {"tortoise", "asyncpg", "aiokafka"}
HTTP_PLUMBING = [
    "servicekit.problems",
    "servicekit.requests",
    "servicekit.params",
    "servicekit.money",
    "servicekit.logs",
    "servicekit.metrics",
    "servicekit.serve",
    "servicekit.limits",
]


def packages_loaded_by(*modules: str) -> set[str]:
    imports = "; ".join(f"import {module}" for module in modules)
    script = f"import sys; {imports}; print(' '.join({{name.split('.')[0] for name in sys.modules}}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(result.stdout.split())


@pytest.mark.parametrize("modules", [("gateway.app", "gateway.docs"), tuple(HTTP_PLUMBING)], ids=["gateway", "http"])
def test_the_gateway_and_the_http_plumbing_load_no_orm_driver_or_kafka_client(modules: tuple[str, ...]) -> None:
    assert packages_loaded_by(*modules) & DATABASE_AND_KAFKA == set()


def test_a_database_service_does_load_them() -> None:
    """The check above can fail: the services' app does import what the gateway must not."""
    assert packages_loaded_by("servicekit.service.app") >= DATABASE_AND_KAFKA
