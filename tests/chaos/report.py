"""The run's summary: one table for people, the whole report as JSON for later comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def table(report: dict[str, Any]) -> str:
    orders = report.get("orders", {})
    duplicates = report.get("duplicate_deliveries", {})
    replay = report.get("replay", {})
    violations = report["violations"]
    rows = [
        ("seed", report["seed"]),
        ("form", report["form"]),
        ("duration", f"{report.get('duration_seconds', '?')} s (setup {report.get('setup_seconds', '?')} s)"),
        ("orders placed / accepted 201", f"{orders.get('placed')} / {orders.get('accepted_201')}"),
        ("orders paid / failed / pending", f"{orders.get('paid')} / {orders.get('failed')} / {orders.get('pending')}"),
        ("orders created without an answer", orders.get("created_without_answer")),
        ("orders closed by the payment deadline", orders.get("timed_out")),
        ("idempotent replays", orders.get("idempotent_replays")),
        *((f"fault: {kind}", n) for kind, n in sorted(report["faults"].items())),
        ("fault-point hits (faults / logs)", _hits(report["fault_point_hits"])),
        ("duplicates recognised: inbox / ledger", _pair(duplicates, "recognised_by_inbox", "recognised_by_ledger")),
        ("redelivered from earliest", duplicates.get("redelivered_from_earliest")),
        (
            "republished under new ids: commands / results",
            _pair(duplicates, "republished_commands", "republished_results"),
        ),
        ("concurrent pairs / split across instances / raced", _pairs_figures(duplicates)),
        ("rebalances: orders / payments", _pair(report["rebalances"], "orders", "payments")),
        ("failed offset commits", report["failed_offset_commits"]),
        ("5xx during faults / outside", _pair(report.get("server_errors", {}), "during_faults", "outside_faults")),
        (
            "invariant samples (missed: db down)",
            _pair(report["invariant_samples"], "taken", "missed_while_database_down"),
        ),
        ("time to drain", f"{report['time_to_drain_seconds']} s"),
        ("longest wait for a settlement", f"{report.get('settlement', {}).get('longest_wait_seconds')} s"),
        ("dead letters: orders / payments", _pair(report.get("dead_letters", {}), "orders", "payments")),
        (
            "dead letters replayed, new debits",
            _pair(report.get("dead_letter_replay", {}), "replayed", "new_debits"),
        ),
        ("inbox purged, commands replayed", _pair(replay, "inbox_rows_purged", "commands_replayed")),
        ("new debits after replay", replay.get("new_debits")),
        ("VIOLATIONS", violations["total"]),
        *((f"  {kind}", n) for kind, n in sorted(violations["by_kind"].items())),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def _pair(figures: dict[str, Any], first: str, second: str) -> str:
    return f"{figures.get(first)} / {figures.get(second)}"


def _pairs_figures(duplicates: dict[str, Any]) -> str:
    return " / ".join(
        str(duplicates.get(name))
        for name in ("concurrent_pairs", "concurrent_pairs_split_across_instances", "concurrent_pairs_raced")
    )


def _hits(hits: dict[str, Any]) -> str:
    return f"{sum(hits['by_fault'].values())} / {hits['in_service_logs']}"


def write(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = report["finished_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = directory / f"chaos-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
