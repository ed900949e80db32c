"""A real Prometheus (Debian's package; ``make test`` installs it as root, as it does chromium) scrapes the running
stack with the configuration and rules in ``ops/prometheus/``, pointed at the test stack's ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stack.local import ROOT, LocalStack, free_ports
from tests.helpers import OPERATOR_TOKEN, eventually

pytestmark = pytest.mark.slow

CONFIG_DIR = ROOT / "ops" / "prometheus"
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None, reason="Prometheus is not installed (make test installs it as root)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, check=False)


def config_for(stack: LocalStack, workdir: Path) -> Path:
    """ops/prometheus/prometheus.yml with each job's target on the test stack's port, scraping every second."""
    config: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())
    token = workdir / "operator-token"
    token.write_text(OPERATOR_TOKEN)
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(CONFIG_DIR / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        port = getattr(stack.ports, job["job_name"])
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token)
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(stack: LocalStack, tmp_path: Path) -> Iterator[str]:
    assert PROMETHEUS is not None
    (port,) = free_ports(1)
    config = config_for(stack, tmp_path)
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def api(prometheus: str, path: str, **params: str) -> Any:
    async with httpx.AsyncClient(base_url=prometheus) as client:
        try:
            response = await client.get(path, params=params)
        except httpx.TransportError:
            return None
    return response.json()["data"] if response.status_code == 200 else None


@needs_prometheus
def test_the_rules_and_the_configuration_pass_promtool(stack: LocalStack, tmp_path: Path) -> None:
    rules = promtool("check", "rules", CONFIG_DIR / "rules.yml")
    config = promtool("check", "config", config_for(stack, tmp_path))

    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert config.returncode == 0, config.stdout + config.stderr


@needs_prometheus
async def test_prometheus_scrapes_every_target_and_reads_the_outbox_age(prometheus: str) -> None:
    async def all_up() -> dict[str, str] | None:
        targets = await api(prometheus, "/api/v1/targets")
        health = {target["labels"]["job"]: target["health"] for target in (targets or {}).get("activeTargets", [])}
        return health if health and set(health.values()) == {"up"} else None

    async def outbox_ages() -> dict[str, float] | None:
        result = await api(prometheus, "/api/v1/query", query="gozon_outbox_oldest_age_seconds")
        ages = {sample["metric"]["service"]: float(sample["value"][1]) for sample in (result or {}).get("result", [])}
        return ages if set(ages) == {"orders", "payments"} else None

    async def rules_loaded() -> list[str] | None:
        groups = (await api(prometheus, "/api/v1/rules") or {}).get("groups", [])
        rules = [rule for group in groups for rule in group["rules"]]
        healthy = [rule["name"] for rule in rules if rule["health"] == "ok"]
        return healthy if rules and len(healthy) == len(rules) else None

    assert await eventually(all_up, timeout=60, interval=0.5) == {"gateway": "up", "orders": "up", "payments": "up"}
    assert all(age >= 0 for age in (await eventually(outbox_ages, timeout=30, interval=0.5)).values())
    assert "GozonDeadLetter" in await eventually(rules_loaded, timeout=30, interval=0.5)
