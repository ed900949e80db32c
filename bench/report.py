"""Turns the rounds of measurements into the figures: medians across rounds, the table printed at the end, the
JSON in ``bench/results/`` and the "latest results" section of ``bench/README.md``."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ops_scale import ENDPOINTS, GOAL_ORDERS, GOAL_P99_MS, GOAL_RATIO

README_START = "<!-- bench:latest:start -->"
README_END = "<!-- bench:latest:end -->"
PROCESS_GROUPS = ("generator", "gateway", "orders", "payments", "kafka", "postgres")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    target: str = ""


OPS_ROUTES = {name: path.split("?")[0] for name, path in ENDPOINTS.items()}
OPS_FIGURES = (
    Figure("ops_preload_orders", "Ops at scale: orders preloaded", "count"),
    Figure("ops_preload_seconds", "  preload: inserts, VACUUM, CHECKPOINT", "s"),
    *(
        figure
        for name, route in OPS_ROUTES.items()
        for figure in (
            Figure(f"ops_{name}_p99_loaded_ms", f"GET {route} p99, preloaded", "ms", f"<= {GOAL_P99_MS:g}"),
            Figure(f"ops_{name}_p99_empty_ms", "  the same before the preload", "ms"),
            Figure(f"ops_{name}_p99_ratio", "  preloaded / before", "ratio", f"<= {GOAL_RATIO:.0%}"),
        )
    ),
)
FIGURES = (
    Figure("pgbench_tps", "PostgreSQL: pgbench -N", "tx/s"),
    Figure("postgres_bound_orders_per_s", "PostgreSQL bound (TPS / 3)", "orders/s"),
    Figure("ceiling_orders_per_s", "PostgreSQL ceiling: Gozon's statements", "orders/s"),
    Figure("ceiling_orders_db_per_s", "  orders database's script", "orders/s"),
    Figure("ceiling_payments_db_per_s", "  payments database's script", "orders/s"),
    Figure("ceiling_notifying_commits_per_s", "  commits that write and NOTIFY (settles)", "commits/s"),
    Figure("ceiling_to_bound_ratio", "  ceiling / PostgreSQL bound", "ratio"),
    Figure("peak_settled_orders_per_s", "Peak settled orders/s", "orders/s"),
    Figure("offered_at_peak_per_s", "  offered rate at the peak", "orders/s"),
    Figure("settled_to_bound_ratio", "  peak / PostgreSQL bound", "ratio", ">= 0.50"),
    Figure("settled_to_ceiling_ratio", "  peak / PostgreSQL ceiling", "ratio"),
    Figure("settle_p50_ms", "Create -> settled p50 @ fixed rate", "ms"),
    Figure("settle_p95_ms", "Create -> settled p95", "ms"),
    Figure("settle_p99_ms", "Create -> settled p99", "ms", "<= 50"),
    Figure("poison_settle_p99_ms", "Create -> settled p99, 1 bad message/s", "ms"),
    Figure("poison_settle_p99_ratio", "  with poison / without", "ratio", "<= 1.5"),
    Figure("post_p50_ms", "POST /orders response p50", "ms"),
    Figure("post_p95_ms", "POST /orders response p95", "ms"),
    Figure("post_p99_ms", "POST /orders response p99", "ms"),
    Figure("direct_get_rps", "GET /orders/{id} direct", "req/s"),
    Figure("gateway_get_rps", "GET /orders/{id} via gateway", "req/s"),
    Figure("gateway_to_direct_ratio", "  gateway / direct", "ratio", ">= 0.70"),
    Figure("direct_get_p99_ms", "GET direct p99", "ms"),
    Figure("gateway_get_p99_ms", "GET via gateway p99", "ms"),
    Figure("relay_ack_p99_ms_orders", "Relay insert -> ack p99, orders (/ops)", "ms"),
    Figure("relay_ack_p99_ms_payments", "Relay insert -> ack p99, payments (/ops)", "ms"),
    Figure("relay_acked_p99_ms_orders", "Relay insert -> acked p99, orders (table)", "ms"),
    Figure("relay_acked_p99_ms_payments", "Relay insert -> acked p99, payments (table)", "ms"),
    Figure("generator_cpu_max", "Load generator CPU, busiest phase", "cores"),
    Figure("live_sockets_open", "Live: sockets open through the gateway", "sockets"),
    Figure("live_settled_per_s", "Live: settled orders/s during the run", "orders/s"),
    Figure("live_p50_ms", "Live: status commit -> client p50", "ms"),
    Figure("live_p99_ms", "Live: status commit -> client p99", "ms", "<= 50"),
    Figure("live_lost", "Live: changes lost (order x socket)", "count", "0"),
    Figure("live_misrouted", "Live: changes at another user's socket", "count", "0"),
    Figure("live_kib_per_socket_gateway", "Live: memory per idle socket, gateway", "KiB"),
    Figure("live_kib_per_socket_orders", "Live: memory per idle socket, orders", "KiB"),
    Figure("live_client_cpu", "Live: socket client process CPU", "cores"),
    Figure("retention_rows_per_s", "Retention: rows deleted/s while writing", "rows/s"),
    Figure("retention_post_p99_without_ms", "Retention: POST p99 without cleanup", "ms"),
    Figure("retention_post_p99_with_ms", "Retention: POST p99 during cleanup", "ms"),
    Figure("retention_post_p99_ratio", "  POST p99, during / without", "ratio", "< 110%"),
    Figure("retention_insert_p99_without_ms", "Retention: insert tx p99 without cleanup", "ms"),
    Figure("retention_insert_p99_with_ms", "Retention: insert tx p99 during cleanup", "ms"),
    Figure("retention_insert_p99_ratio", "  insert p99, during / without", "ratio", "< 110%"),
    Figure("retention_post_p50_ratio", "  POST p50, during / without", "ratio"),
    Figure("retention_insert_p50_ratio", "  insert p50, during / without", "ratio"),
    Figure("retention_post_p99_ratio_noise", "  POST p99, 2nd run without / 1st", "ratio"),
    Figure("retention_insert_p99_ratio_noise", "  insert p99, 2nd run without / 1st", "ratio"),
    Figure("retention_unpaced_rows_per_s", "Retention unpaced (pause=0): rows deleted/s", "rows/s"),
    Figure("retention_post_p99_ratio_unpaced", "  POST p99, unpaced cleanup / without", "ratio"),
    Figure("retention_insert_p99_ratio_unpaced", "  insert p99, unpaced cleanup / without", "ratio"),
    *OPS_FIGURES,
)
RETENTION_RUNS = {
    "without_cleanup": "without cleanup",
    "with_cleanup": "services' cleanup",
    "with_unpaced_cleanup": "unpaced (pause=0)",
    "without_cleanup_again": "without, again",
}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def figures_of(run: dict[str, Any]) -> dict[str, float | None]:
    """The headline figures of one round."""
    postgres, saturation, fixed, gateway = run["postgres"], run["saturation"], run["fixed_rate"], run["gateway"]
    live, retention, ceiling = run["live"], run["retention"], run["ceiling"]
    generator_cpu = [phase["generator"] for phase in cpu_by_phase(run).values() if phase.get("generator") is not None]
    return {
        "pgbench_tps": postgres["tps"],
        "postgres_bound_orders_per_s": postgres["orders_bound"],
        "peak_settled_orders_per_s": saturation["peak_settled_per_s"],
        "offered_at_peak_per_s": saturation["peak"]["offered_per_s"],
        "ceiling_orders_per_s": ceiling["orders_per_s"],
        **{f"ceiling_{db}_db_per_s": ceiling["databases"][db]["orders_per_s"] for db in ("orders", "payments")},
        "ceiling_notifying_commits_per_s": ceiling["notifying_commits_per_s"],
        "ceiling_to_bound_ratio": _ratio(ceiling["orders_per_s"], postgres["orders_bound"]),
        "settled_to_bound_ratio": _ratio(saturation["peak_settled_per_s"], postgres["orders_bound"]),
        "settled_to_ceiling_ratio": _ratio(saturation["peak_settled_per_s"], ceiling["orders_per_s"]),
        **{f"settle_{p}_ms": fixed["settle_ms"][p] for p in ("p50", "p95", "p99")},
        **{f"post_{p}_ms": fixed["post_ms"][p] for p in ("p50", "p95", "p99")},
        **poison_figures(run),
        "direct_get_rps": gateway["direct"]["requests_per_s"],
        "gateway_get_rps": gateway["gateway"]["requests_per_s"],
        "gateway_to_direct_ratio": gateway["ratio"],
        "direct_get_p99_ms": gateway["direct"]["ms"]["p99"],
        "gateway_get_p99_ms": gateway["gateway"]["ms"]["p99"],
        **{f"relay_ack_p99_ms_{s}": fixed["relay_ack_p99_ms"][s] for s in ("orders", "payments")},
        **{f"relay_acked_p99_ms_{s}": fixed["relay_acked_ms"][s]["p99"] for s in ("orders", "payments")},
        "generator_cpu_max": max(generator_cpu, default=None),
        "live_sockets_open": live["open"]["opened"],
        "live_settled_per_s": live["settled_per_s"],
        "live_p50_ms": live["commit_to_client_ms"]["p50"],
        "live_p99_ms": live["commit_to_client_ms"]["p99"],
        "live_lost": live["lost_deliveries"],
        "live_misrouted": live["misrouted"],
        **{f"live_kib_per_socket_{s}": live["idle"]["kib_per_socket"][s] for s in ("gateway", "orders")},
        "live_client_cpu": live["cpu"]["sockets"],
        "retention_rows_per_s": retention["with_cleanup"]["deleted"]["rows_per_s"],
        **{
            f"retention_{figure}_p99_{label}_ms": retention[run][f"{figure}_ms"]["p99"]
            for figure in ("post", "insert")
            for label, run in (("without", "without_cleanup"), ("with", "with_cleanup"))
        },
        "retention_post_p99_ratio": retention["post_p99_ratio"],
        "retention_insert_p99_ratio": retention["insert_p99_ratio"],
        "retention_post_p50_ratio": retention["post_p50_ratio"],
        "retention_insert_p50_ratio": retention["insert_p50_ratio"],
        "retention_post_p99_ratio_noise": retention["post_p99_ratio_noise"],
        "retention_insert_p99_ratio_noise": retention["insert_p99_ratio_noise"],
        "retention_unpaced_rows_per_s": retention["with_unpaced_cleanup"]["deleted"]["rows_per_s"],
        "retention_post_p99_ratio_unpaced": retention["post_p99_ratio_unpaced"],
        "retention_insert_p99_ratio_unpaced": retention["insert_p99_ratio_unpaced"],
        **ops_figures(run.get("ops")),
    }


def cpu_by_phase(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """CPU share (cores) of every process group in each measured phase of one round."""
    return {
        "pgbench": run["postgres"]["cpu"],
        "pgbench ceiling": run["ceiling"]["cpu"],
        "saturation (peak step)": run["saturation"]["peak"]["cpu"],
        "fixed rate": run["fixed_rate"]["cpu"],
        "GET direct": run["gateway"]["direct"]["cpu"],
        "GET via gateway": run["gateway"]["gateway"]["cpu"],
        "live status": run["live"]["cpu"],
        "retention cleanup": run["retention"]["with_cleanup"]["cpu"],
    }


def cpu_ms_per_unit(run: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """CPU milliseconds per order (at the ceiling, at the fixed rate, at the live-status rate) and per GET request,
    of every process group."""
    return {
        "per order @ ceiling": run["ceiling"]["cpu_ms_per_order"],
        "per order @ fixed rate": run["fixed_rate"]["cpu_ms_per_order"],
        "per GET direct": run["gateway"]["direct"]["cpu_ms_per_request"],
        "per GET via gateway": run["gateway"]["gateway"]["cpu_ms_per_request"],
        "per order @ live status": run["live"]["cpu_ms_per_order"],
    }


def _medians_by_group(tables: list[dict[str, dict[str, float | None]]]) -> dict[str, dict[str, float | None]]:
    return {
        row: {group: median([table[row].get(group) for table in tables]) for group in PROCESS_GROUPS}
        for row in tables[0]
    }


def _stage_medians(rounds: list[dict[str, dict[str, float | None]]]) -> dict[str, dict[str, float | None]]:
    return {stage: {q: median([stages[stage][q] for stages in rounds]) for q in ("p50", "p99")} for stage in rounds[0]}


def poison_figures(run: dict[str, Any]) -> dict[str, float | None]:
    poisoned = run["poison"]["settle_ms"]["p99"]
    return {
        "poison_settle_p99_ms": poisoned,
        "poison_settle_p99_ratio": _ratio(poisoned, run["fixed_rate"]["settle_ms"]["p99"]),
    }


def _poison_checks(poison: dict[str, Any]) -> dict[str, bool]:
    return {
        "poison_requests_accounted": poison["sent"] == poison["created"] + poison["errors"],
        "poison_all_settled": poison["orders"]["PENDING"] == 0,
        "poison_each_dead_lettered_once": poison["dead_lettered"] == sum(poison["injected"].values()),
    }


def poison_accounted(run: dict[str, Any]) -> bool:
    return all(_poison_checks(run["poison"]).values())


def poison_summary(run: dict[str, Any]) -> list[str]:
    figures, poison = poison_figures(run), run["poison"]
    return [
        f"create -> settled p99 without poison    {run['fixed_rate']['settle_ms']['p99']} ms",
        f"create -> settled p99 with 1 bad msg/s  {figures['poison_settle_p99_ms']} ms",
        f"  ratio                                 {figures['poison_settle_p99_ratio']}",
        f"bad messages injected / dead letters    {sum(poison['injected'].values())} / {poison['dead_lettered']}",
        *(f"  {check}: {'ok' if ok else 'FAILED'}" for check, ok in _poison_checks(poison).items()),
    ]


def ops_figures(ops: dict[str, Any] | None) -> dict[str, float | None]:
    """The ops phase's figures; all None for a round that did not measure it."""
    if ops is None:
        return dict.fromkeys(figure.key for figure in OPS_FIGURES)
    figures: dict[str, float | None] = {
        "ops_preload_orders": ops["preload"]["orders"],
        "ops_preload_seconds": ops["preload"]["seconds"],
    }
    for name in ENDPOINTS:
        loaded, empty = ops["loaded"][name]["ms"]["p99"], ops["empty"][name]["ms"]["p99"]
        figures |= {
            f"ops_{name}_p99_loaded_ms": loaded,
            f"ops_{name}_p99_empty_ms": empty,
            f"ops_{name}_p99_ratio": _ratio(loaded, empty),
        }
    return figures


def ops_goals(ops: dict[str, Any]) -> dict[str, bool] | None:
    """Per endpoint, whether the ops goal holds: preloaded p99 <= GOAL_P99_MS and at most GOAL_RATIO times the
    p99 before the preload. None (not judged) when fewer than GOAL_ORDERS orders were preloaded: on the smoke run's
    10 k both p99s are a few milliseconds, so their ratio is the shared machine's noise, and a goal about 10 M rows
    says nothing about 10 k. Like every speed figure, the goal is reported, never turned into the exit status."""
    if ops["preload"]["orders"] < GOAL_ORDERS:
        return None
    figures = ops_figures(ops)
    return {
        name: _within_goal(figures[f"ops_{name}_p99_loaded_ms"], figures[f"ops_{name}_p99_ratio"]) for name in ENDPOINTS
    }


def _within_goal(p99_ms: float | None, ratio: float | None) -> bool:
    return p99_ms is not None and ratio is not None and p99_ms <= GOAL_P99_MS and ratio <= GOAL_RATIO


def _ops_goal_line(ops: dict[str, Any]) -> str:
    goal = f"p99 <= {GOAL_P99_MS:g} ms and <= {GOAL_RATIO:.0%} of before, at {GOAL_ORDERS:,} orders"
    goals = ops_goals(ops)
    if goals is None:
        return f"goal ({goal}): not judged, {ops['preload']['orders']:,} orders preloaded"
    missed = [OPS_ROUTES[name] for name, met in goals.items() if not met]
    return f"goal ({goal}): " + (f"MISSED by {', '.join(missed)}" if missed else "met")


def _ops_checks(ops: dict[str, Any]) -> dict[str, bool]:
    timed = [*ops["empty"].values(), *ops["loaded"].values()]
    preload = ops["preload"]
    planned = {"orders": preload["orders"], "payments": preload["orders"]}
    planned |= {"accounts": preload["users"], "deposits": preload["users"]}
    return {
        "ops_all_answered": all(endpoint["requests"] > 0 and endpoint["errors"] == 0 for endpoint in timed),
        "ops_preload_written": preload["rows"] == planned,
    }


def ops_accounted(ops: dict[str, Any]) -> bool:
    return all(_ops_checks(ops).values())


def ops_details(ops: dict[str, Any]) -> list[str]:
    """The preload, each endpoint before and after it, and the goal."""
    preload = ops["preload"]
    lines = [
        f"ops at scale: {ops['orders_before']:,} orders before the preload; preloaded {preload['orders']:,} orders "
        f"of {preload['users']:,} users in {preload['seconds']} s (inserts {preload['insert_seconds']}, "
        f"VACUUM ANALYZE {preload['vacuum_analyze_seconds']}, CHECKPOINT {preload['checkpoint_seconds']})",
        f"{'ops at scale (ms)':<24}{'before the preload':>30}{'preloaded':>30}",
        f"{'':<24}" + "".join(f"{heading:>10}" for heading in ("p50", "p99", "requests") * 2),
    ]
    for name, route in OPS_ROUTES.items():
        cells = [
            value
            for timed in (ops["empty"][name], ops["loaded"][name])
            for value in (
                format_value(timed["ms"]["p50"], "ms"),
                format_value(timed["ms"]["p99"], "ms"),
                str(timed["requests"]),
            )
        ]
        lines.append(f"{route:<24}" + "".join(f"{cell:>10}" for cell in cells))
    return [*lines, _ops_goal_line(ops)]


def ops_summary(ops: dict[str, Any]) -> list[str]:
    """``--only ops``: the details, then the checks."""
    return [*ops_details(ops), *(f"  {check}: {'ok' if ok else 'FAILED'}" for check, ok in _ops_checks(ops).items())]


def checks_of(run: dict[str, Any]) -> dict[str, bool]:
    """Bookkeeping that must add up whatever the speed: every request answered or failed, every created order
    found in the database and settled."""
    fixed, saturation, live, retention = run["fixed_rate"], run["saturation"], run["live"], run["retention"]
    retention_runs = [retention[name] for name in RETENTION_RUNS]
    return {
        "fixed_rate_requests_accounted": fixed["sent"] == fixed["created"] + fixed["errors"],
        "fixed_rate_orders_found": fixed["created"] == sum(fixed["orders"].values()),
        "fixed_rate_all_settled": fixed["orders"]["PENDING"] == 0,
        **_poison_checks(run["poison"]),
        **_saturation_checks(saturation),
        "live_all_sockets_opened": live["open"]["failed"] == 0,
        "live_requests_accounted": live["sent"] == live["created"] + live["errors"],
        "live_all_settled": live["left_pending"] == 0,
        "live_snapshot_first": live["first_message_not_snapshot"] == 0,
        "live_nothing_lost": live["lost_deliveries"] == 0,
        "live_nothing_misrouted": live["misrouted"] == 0,
        "retention_requests_accounted": all(r["sent"] == r["created"] + r["errors"] for r in retention_runs),
        "retention_all_settled": all(r["left_pending"] == 0 for r in retention_runs),
        "retention_old_rows_gone": not any(retention["old_rows_left"].values()),
        # Measured once, in the last round.
        **(_ops_checks(run["ops"]) if "ops" in run else {}),
    }


def _saturation_checks(saturation: dict[str, Any]) -> dict[str, bool]:
    return {
        "saturation_requests_accounted": all(s["sent"] == s["created"] + s["errors"] for s in saturation["steps"]),
        "saturation_drained": saturation["left_pending"] == 0,
    }


def saturation_accounted(run: dict[str, Any]) -> bool:
    return all(_saturation_checks(run["saturation"]).values())


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_run = [figures_of(run) for run in runs]
    checks = [checks_of(run) for run in runs]
    ops = next((run["ops"] for run in runs if "ops" in run), None)
    return {
        "figures": {f.key: median([figures[f.key] for figures in per_run]) for f in FIGURES},
        "figures_per_run": per_run,
        "cpu_share": _medians_by_group([cpu_by_phase(run) for run in runs]),
        "cpu_ms_per_unit": _medians_by_group([cpu_ms_per_unit(run) for run in runs]),
        "settle_stages_ms": _stage_medians([run["fixed_rate"]["settle_stages_ms"] for run in runs]),
        "checks": {name: all(run.get(name, True) for run in checks) for name in _names(checks)},
        "ops_goals": ops_goals(ops) if ops else None,
    }


def _names(checks: list[dict[str, bool]]) -> list[str]:
    """Every check's name, in order, including those of a phase only some rounds measured."""
    return list(dict.fromkeys(name for run in checks for name in run))


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    memory_kib = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.MULTILINE)
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(int(memory_kib.group(1)) / 1024**2, 1) if memory_kib else None,
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.0%}"
    if unit in ("count", "sockets"):
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def table(result: dict[str, Any]) -> str:
    """The figures (median of the rounds, then each round), then CPU per phase, then peak memory."""
    per_run = result["figures_per_run"]
    lines = [f"{'figure':<44} {'median':>9} {'unit':<9} {'rounds':<26} target"]
    for f in FIGURES:
        rounds = " / ".join(format_value(figures[f.key], f.unit) for figures in per_run)
        value = format_value(result["figures"][f.key], f.unit)
        lines.append(f"{f.label:<44} {value:>9} {f.unit:<9} {rounds:<26} {f.target}".rstrip())
    lines += ["", f"{'create -> settled @ fixed rate, by stage (ms, median)':<56}{'p50':>9}{'p99':>9}"]
    for stage, ms in result["settle_stages_ms"].items():
        lines.append(f"  {stage:<54}{format_value(ms['p50'], 'ms'):>9}{format_value(ms['p99'], 'ms'):>9}")
    lines += ["", *saturation_steps(result["runs"][-1])]
    lines += ["", *live_details(result["runs"][-1])]
    lines += ["", *retention_runs(result["runs"][-1])]
    lines += ["", f"{'CPU (cores, median)':<24}" + "".join(f"{group:>10}" for group in PROCESS_GROUPS)]
    for phase, shares in result["cpu_share"].items():
        lines.append(
            f"{phase:<24}" + "".join(f"{format_value(shares[group], 'cores'):>10}" for group in PROCESS_GROUPS)
        )
    lines += ["", f"{'CPU ms (median)':<24}" + "".join(f"{group:>10}" for group in PROCESS_GROUPS)]
    for unit, costs in result["cpu_ms_per_unit"].items():
        lines.append(f"{unit:<24}" + "".join(f"{format_value(costs[group], 'ms'):>10}" for group in PROCESS_GROUPS))
    lines += ["", f"{'peak RSS (MiB, VmHWM)':<24}" + "".join(f"{group:>10}" for group in PROCESS_GROUPS)]
    lines.append(
        f"{'':<24}" + "".join(f"{format_value(result['peak_rss_mib'].get(g), 'MiB'):>10}" for g in PROCESS_GROUPS)
    )
    if ops := result["runs"][-1].get("ops"):
        lines += ["", *ops_details(ops)]
    failed = [name for name, ok in result["checks"].items() if not ok]
    lines += ["", "bookkeeping: " + ("all counts add up" if not failed else "FAILED " + ", ".join(failed))]
    return "\n".join(lines)


def saturation_steps(run: dict[str, Any]) -> list[str]:
    """The saturation ramp of one round: where the rate stopped turning into settled orders."""
    header = f"{'saturation (last round)':<24}{'answered/s':>11}{'errors':>7}{'settled/s':>10}{'POST p99 ms':>12}"
    lines = [header + "".join(f"{group:>10}" for group in ("gateway", "orders", "payments", "postgres"))]
    for step in run["saturation"]["steps"]:
        offered = f"{'probe' if step.get('probe') else 'offered'} {step['offered_per_s']:.0f}/s"
        lines.append(
            f"{offered:<24}"
            f"{format_value(step['answered_per_s'], ''):>11}{step['errors']:>7}"
            f"{format_value(step['settled_per_s'], ''):>10}"
            f"{format_value(step['post_ms']['p99'], 'ms'):>12}"
            + "".join(
                f"{format_value(step['cpu'][g], 'cores'):>10}" for g in ("gateway", "orders", "payments", "postgres")
            )
        )
    return lines


def saturation_summary(run: dict[str, Any]) -> list[str]:
    """``--only saturation``: the bound, the peak and its ratio to the bound, then the ramp."""
    bound, peak = run["postgres"]["orders_bound"], run["saturation"]["peak_settled_per_s"]
    tps = run["postgres"]["tps"]
    return [
        f"pgbench -N {tps:,.0f} tps, bound {bound:,.0f} orders/s; peak settled {peak:,.1f}/s = {peak / bound:.1%}",
        *saturation_steps(run),
    ]


def live_details(run: dict[str, Any]) -> list[str]:
    """The live-status run of one round: what every socket received, and what the sockets cost."""
    live = run["live"]
    ms, opened = live["commit_to_client_ms"], live["open"]
    lines = [
        f"live status (last round): {live['users']} users x {live['sockets'] // live['users']} sockets, "
        f"{opened['opened']} open in {opened['seconds']} s "
        f"(handshake + snapshot p99 {opened['handshake_ms']['p99']} ms); "
        f"{live['created']} orders at {live['rate']:.0f}/s",
        f"  deliveries {live['deliveries']:,} of {live['expected_deliveries']:,}; lost {live['lost_deliveries']}, "
        f"misrouted {live['misrouted']}, duplicates {live['duplicates']}, stale {live['stale']}, "
        f"closed early {sum(live['closed_early'].values())}",
        f"  status commit -> client ms: p50 {ms['p50']}, p95 {ms['p95']}, p99 {ms['p99']}, max {ms['max']}",
        f"{'':<26}" + "".join(f"{group:>10}" for group in ("gateway", "orders", "sockets")),
    ]
    idle = live["idle"]
    rows = {
        "RSS before (MiB)": {g: _mib(idle["rss_before_kib"].get(g)) for g in ("gateway", "orders", "sockets")},
        "RSS, sockets idle (MiB)": {g: _mib(idle["rss_after_kib"][g]) for g in ("gateway", "orders", "sockets")},
        "KiB per idle socket": idle["kib_per_socket"],
        "CPU idle (cores)": idle["cpu"],
        "CPU under load (cores)": live["cpu"],
    }
    for label, values in rows.items():
        lines.append(
            f"  {label:<24}" + "".join(f"{format_value(values[g], ''):>10}" for g in ("gateway", "orders", "sockets"))
        )
    return lines


def _mib(kib: float | None) -> float | None:
    return None if kib is None else kib / 1024


def retention_runs(run: dict[str, Any]) -> list[str]:
    """The retention runs of one round, side by side."""
    retention = run["retention"]
    seeded = retention["seeded"]
    header = f"{'retention (last round)':<24}{'window s':>9}{'rows/s':>10}{'WAL MiB':>9}"
    header += "".join(f"{f'{what} {p}':>12}" for what in ("POST", "insert") for p in ("p50", "p99"))
    lines = [
        f"retention: {seeded['outbox']:,} outbox + {seeded['inbox']:,} inbox rows 8 days old; orders at "
        f"{retention['rate']:.0f}/s; ms of the requests due in each window",
        header,
    ]
    for key, label in RETENTION_RUNS.items():
        r = retention[key]
        rows_per_s = r["deleted"]["rows_per_s"] if "deleted" in r else None
        lines.append(
            f"{label:<24}{format_value(r['window_seconds'], ''):>9}{format_value(rows_per_s, 'rows/s'):>10}"
            f"{format_value(r['wal_mib'], ''):>9}"
            + "".join(
                f"{format_value(r[f'{what}_ms'][p], 'ms'):>12}" for what in ("post", "insert") for p in ("p50", "p99")
            )
        )
    return lines


def write_json(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def update_readme(readme: Path, result: dict[str, Any], json_path: Path) -> None:
    """Replace the section between the markers with this run: the machine, then the table."""
    text = readme.read_text()
    m, v = result["machine"], result["versions"]
    section = "\n".join(
        [
            README_START,
            f"Run of {result['date']} (`{json_path.name}`), {result['rounds']} rounds, medians; "
            f"{m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
            f"PostgreSQL {v['postgres']}, Kafka {v['kafka']}; 1-minute load average "
            f"{m['load_average_at_start'][0]} at the start, {m['load_average_at_end'][0]} at the end "
            "(other engineers' work shares the machine).",
            "",
            "```",
            table(result),
            "```",
            README_END,
        ]
    )
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    readme.write_text(pattern.sub(lambda _: section, text))
