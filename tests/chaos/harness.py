"""One chaos run from start to finish: start the system, load it while the faults run, let it drain, wait one
payment deadline for the orders it must close, check everything, fix the broken handlers and replay every dead
letter, purge the inbox and replay every command, and report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack.local import ROOT
from tests.chaos import poison, service_logs
from tests.chaos.checks import Checks
from tests.chaos.cluster import ChaosCluster
from tests.chaos.config import ChaosConfig
from tests.chaos.faults import FaultInjector, plan
from tests.chaos.findings import Findings
from tests.chaos.load import Load
from tests.chaos.monitors import GroupMonitor, LedgerMonitor, SettlementMonitor, running

log = logging.getLogger("chaos")

LOG_DIR = ROOT / "tests" / "artifacts" / "logs" / "chaos"


async def run(config: ChaosConfig, log_dir: Path = LOG_DIR) -> dict[str, Any]:
    """The run's report; its ``violations.total`` must be 0."""
    shutil.rmtree(log_dir, ignore_errors=True)
    started = time.monotonic()
    cluster = ChaosCluster(config, log_dir)
    try:
        await cluster.start()
        setup = time.monotonic() - started
        log.info("system up in %.1fs (logs in %s)", setup, log_dir)
        chaos = ChaosRun(config, cluster, log_dir)
        await chaos.exercise()
    finally:
        await asyncio.to_thread(cluster.stop)
    return chaos.report() | {
        "setup_seconds": round(setup, 1),
        "duration_seconds": round(time.monotonic() - started, 1),
    }


class ChaosRun:
    def __init__(self, config: ChaosConfig, cluster: ChaosCluster, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        topics = cluster.stack.topics
        self.findings = Findings()
        self.load = Load(config, cluster.gateway_url, self.findings)
        _, broken = poison.special_user_prefixes(config)
        self.checks = Checks(cluster, topics, self.findings, awaiting_deadline=broken)
        self.poisoner = poison.Poisoner(config, cluster.bootstrap_servers, topics, self.load)
        self.injector = FaultInjector(
            config,
            cluster,
            topics,
            synthetic_users=[(user.id, user.has_account) for user in self.load.synthetic_users],
            real_users=self.load.real_user_ids,
            verify_handled=self.checks.commands_handled,
            poisoner=self.poisoner,
        )
        self.ledger = LedgerMonitor(cluster.database_url("payments"), self.findings)
        self.settlement = SettlementMonitor(cluster.database_url("orders"), config.stall_limit, broken)
        self.groups = GroupMonitor(
            cluster.bootstrap_servers, {"orders": topics.payment_results, "payments": topics.payment_commands}
        )
        self.drain: float | None = None
        self.logs: Counter[str] = Counter()
        self.raced = 0

    async def exercise(self) -> None:
        try:
            async with running(self.ledger, self.groups):
                await self.load.prepare_synthetic_users()
                self.drain = await self._load_under_faults()
                if self.drain is None:
                    self.findings.violation("not drained", f"backlog left after {self.config.drain_timeout:.0f}s")
                await self.checks.wait_all_settled(self.config.payment_deadline * 2 + self.config.retry_budget)
                await self._check()
                self.logs = service_logs.figures(self.log_dir)
                pairs = {str(order.order_id) for order in self.injector.synthetic_orders}
                self.raced = service_logs.raced(self.log_dir, pairs)
                await self.injector.cluster.fix_handlers()
                await self.checks.replay_dead_letters(self.config.drain_timeout)
                await self.checks.purge_inbox_and_replay(self.injector, self.config.drain_timeout)
                after_replay = service_logs.figures(self.log_dir)
                self.checks.figures["replay"]["recognised_by_ledger"] = (
                    after_replay["ledger_duplicates"] - self.logs["ledger_duplicates"]
                )
        finally:
            await self.load.close()

    async def _load_under_faults(self) -> float | None:
        """Load until every fault ran and enough orders were accepted; then the seconds the backlog took to
        drain (None if it did not)."""
        users = asyncio.create_task(self.load.run())
        settlement = asyncio.create_task(self.settlement.run())
        try:
            await asyncio.sleep(self.config.warmup)
            await self.poisoner.unreadable()
            await self.injector.run(plan(self.config))
            log.info("faults done; %d orders accepted so far", self.load.accepted)
            enough = asyncio.create_task(self.load.enough.wait())
            await asyncio.wait([users, enough], return_when=asyncio.FIRST_COMPLETED)
            enough.cancel()
        finally:
            self.load.stop()
            await users
            settlement.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settlement
        log.info("load stopped: %d orders placed, %d accepted", len(self.load.orders), self.load.accepted)
        return await self.checks.wait_drained(self.config.drain_timeout)

    async def _check(self) -> None:
        await self.checks.instances_ready()
        self.checks.server_errors(self.load.server_errors, self.injector.windows, self.config.grace)
        await self.checks.orders_and_ledger(self.load, self.injector)
        await self.checks.check_topics(self.load, self.injector)
        synthetic = {order.order_id for order in self.injector.synthetic_orders}
        await self.checks.dead_letters(self.poisoner, synthetic, self.config.max_attempts)
        await self.checks.special_orders(self.poisoner, self.injector.windows, self.config.payment_deadline)
        self.checks.stalls(self.settlement.stalls, self.injector.windows, self.config)
        await self.checks.commands_handled()

    def report(self) -> dict[str, Any]:
        figures, windows = self.checks.figures, self.injector.windows
        return {
            "seed": self.config.seed,
            "form": self.config.name,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "orders": figures.get("orders", {}),
            "deposits": figures.get("deposits", {}),
            "faults": dict(Counter(window.kind for window in windows)),
            "fault_point_hits": {
                "by_fault": dict(Counter(window.kind for window in windows if window.detail.get("hit"))),
                "in_service_logs": self.logs["fault_point_hits"],
            },
            "duplicate_deliveries": self._duplicates(),
            "rebalances": self.groups.rebalances,
            "failed_offset_commits": self.logs["failed_offset_commits"],
            "instance_starts_failed": self.injector.failed_starts,
            "http_statuses": {str(status): n for status, n in sorted(self.load.statuses.items())},
            "server_errors": figures.get("server_errors", {}),
            "invariant_samples": {"taken": self.ledger.samples, "missed_while_database_down": self.ledger.missed},
            "settlement": {
                "longest_wait_seconds": round(self.settlement.longest, 1),
                "stalls": len(self.settlement.stalls),
            },
            "dead_letters": figures.get("dead_letters", {}),
            "dead_letter_replay": figures.get("dead_letter_replay", {}),
            "special_orders": figures.get("special_orders", {}),
            "time_to_drain_seconds": self.drain,
            "topics": figures.get("topics", {}),
            "replay": figures.get("replay", {}),
            "violations": self.findings.as_dict(),
            "timeline": self._timeline(),
        }

    def _duplicates(self) -> dict[str, int]:
        figures = self.injector.figures
        return {
            "recognised_by_inbox": self.logs["inbox_duplicates"],
            "recognised_by_ledger": self.logs["ledger_duplicates"],
            "redelivered_from_earliest": figures["redelivered"],
            "republished_commands": figures["republished commands"],
            "republished_results": figures["republished results"],
            "concurrent_pairs": figures["concurrent pairs"],
            "concurrent_pairs_split_across_instances": figures["pairs split across instances"],
            "concurrent_pairs_raced": self.raced,
        }

    def _timeline(self) -> list[dict[str, Any]]:
        windows = self.injector.windows
        first = min((window.started for window in windows), default=0.0)
        return [
            {
                "kind": window.kind,
                "target": window.target,
                "at": round(window.started - first, 1),
                "seconds": round((window.ended or window.started) - window.started, 1),
                **window.detail,
            }
            for window in windows
        ]
