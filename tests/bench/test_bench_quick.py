"""The benchmark harness, run for about a second per phase on the test stack: it must produce every figure,
and its bookkeeping must add up. No figure's value is judged here: speed is for ``make bench`` to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report
from bench.phases import Plan
from bench.run import measure
from stack.local import LocalStack

pytestmark = pytest.mark.slow

SMOKE = Plan(
    clients=8,
    users=4,
    pgbench_seconds=1,
    first_rate=40,
    max_rate=40,
    step_seconds=1,
    step_warmup=0.2,
    patience=1,
    fixed_rate=40,
    fixed_seconds=1,
    gateway_seconds=1,
    drain_timeout=30,
    live_users=4,
    live_sockets_per_user=2,
    live_rate=20,
    live_seconds=1,
    live_idle_seconds=0.5,
    live_drain_seconds=10,
    # The session's stack is shared with other tests: its services are not restarted.
    live_restart=False,
    retention_outbox_rows=40_000,
    retention_inbox_rows=20_000,
    retention_rate=40,
    retention_seconds=1,
    retention_warmup=0.2,
    retention_probe_rate=20,
    # A preload of this size keeps the shared databases small; its rows are settled and its ledger adds up.
    ops_orders=10_000,
    ops_requests=20,
    ops_warmup_requests=2,
    ops_seconds=5,
)


async def test_one_round_yields_every_figure_and_the_counts_add_up(stack: LocalStack, tmp_path: Path) -> None:
    measured = await measure(stack, SMOKE, rounds=1, profile=False, output=tmp_path, stamp="smoke")
    result = {"rounds": 1, **measured, **report.summarise(measured["runs"])}
    saved = json.loads(report.write_json(result, tmp_path, "smoke").read_text())

    missing = [figure.key for figure in report.FIGURES if saved["figures"][figure.key] is None]
    assert missing == []
    assert saved["checks"] == dict.fromkeys(saved["checks"], True)
    fixed = saved["runs"][0]["fixed_rate"]
    assert fixed["sent"] == 40
    assert fixed["orders"]["PAID"] == fixed["created"] == 40
    step = saved["runs"][0]["saturation"]["steps"][0]
    assert step["sent"] == step["created"] + step["errors"] == 40
    assert set(saved["peak_rss_mib"]) == set(report.PROCESS_GROUPS)
    assert all(mib > 0 for mib in saved["peak_rss_mib"].values())
    live = saved["runs"][0]["live"]
    assert live["open"]["opened"] == 8
    assert live["deliveries"] == live["expected_deliveries"] == 20 * 2
    retention = saved["runs"][0]["retention"]
    assert retention["old_rows_left"] == {"outbox": 0, "inbox": 0}
    ops = saved["runs"][0]["ops"]
    assert ops["preload"]["rows"] == {"orders": 10_000, "payments": 10_000, "accounts": 1_000, "deposits": 1_000}
    assert saved["ops_goals"] is None
    assert "per GET via gateway" in report.table(saved)
