"""``make bench`` (``python -m bench.run``): starts a stack of its own on free ports in a temporary directory,
measures it, and writes ``bench/results/<date>.json``, the table, and the README's latest-results section.

``--quick`` is a smoke run of a few seconds per phase whose results go to ``.data/bench/`` instead, as do those of
``--only retention``, ``--only saturation`` (with the PostgreSQL bound it is set against), ``--only poison`` (with
the fixed-rate probe it is set against) and ``--only ops``, which measure that phase alone and print its own
figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import poison, procs, report, retention
from bench.observe import Observer
from bench.ops_scale import OpsAtScale
from bench.phases import Bench, Plan
from bench.poison import Poison
from bench.retention import SERVICE_RETENTION_SECONDS, Retention
from stack.local import ROOT, LocalStack, Ports

log = logging.getLogger("bench")

RESULTS = ROOT / "bench" / "results"
QUICK_RESULTS = ROOT / ".data" / "bench"
README = ROOT / "bench" / "README.md"
ONLY_PHASES = ["retention", "saturation", "poison", "ops"]
# The services' own retention keeps rows longer than the retention phase's seeded ones are old, so it is the
# bench that deletes them, while it measures.
# The poison phase's broken user needs a handler that always fails: one lookup per message for every other user.
SERVICE_ENV = {
    **{f"{service}_RETENTION_SECONDS": str(SERVICE_RETENTION_SECONDS) for service in ("ORDERS", "PAYMENTS")},
    "GOZON_HANDLER_FAULTS": poison.HANDLER_FAULTS,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per phase, one round (smoke run)")
    parser.add_argument("--repeat", type=int, help="rounds of measurements; medians are reported (default 3, quick 1)")
    parser.add_argument("--clients", type=int, help="HTTP connections of the load and pgbench clients (default 32)")
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument profile at the end")
    parser.add_argument("--profile-only", action="store_true", help="no measurements: only the profiles")
    parser.add_argument(
        "--profile-rate", type=float, help="orders/s while profiling (default 100; near the peak shows its costs)"
    )
    parser.add_argument("--output", type=Path, help="where the JSON and profiles go")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data directory and logs")
    parser.add_argument(
        "--only", choices=ONLY_PHASES, help="measure only this phase (no profile); print its figures, not the README"
    )
    args = parser.parse_args(argv)
    if args.only == "ops" and args.repeat not in (None, 1):
        parser.error("--only ops measures once: the databases are nearly empty only before its preload")
    return args


def kafka_version(stack: LocalStack) -> str | None:
    jars = sorted(stack.broker.jars.glob("kafka-server-[0-9]*.jar"))
    return jars[0].stem.removeprefix("kafka-server-") if jars else None


async def one_round(bench: Bench, only: str | None) -> dict[str, Any]:
    if only == "retention":
        return {"retention": await Retention(bench).measure()}
    if only == "saturation":
        return {"postgres": await bench.postgres_bound(), "saturation": await bench.saturation()}
    if only == "poison":
        fixed, _ = await bench.fixed_rate()
        return {"fixed_rate": fixed, "poison": await Poison(bench).measure()}
    if only == "ops":
        return {}  # measured once, after the rounds: see measure()
    return await bench.measure()


async def measure(
    stack: LocalStack, plan: Plan, rounds: int, profile: bool, output: Path, stamp: str, only: str | None = None
) -> dict:
    observer = await Observer.connect(stack.database_urls, stack.postgres.admin_dsn)
    try:
        bench = Bench(stack, plan, observer)
        await bench.prepare()
        runs = []
        for index in range(rounds):
            bench.progress.note(f"-- round {index + 1} of {rounds}")
            runs.append(await one_round(bench, only))
        bench.groups.sample_memory()
        peak_rss = {name: round(mib, 1) for name, mib in bench.groups.peak_rss.items()}
        profiles = await bench.profile(output, stamp) if profile else {}
        if only in (None, "ops") and runs:
            # After everything else, profile included, and once: the preload leaves the databases big, and they
            # are nearly empty only the first time. Its figures are the last round's.
            runs[-1]["ops"] = await OpsAtScale(bench).measure()
        versions = {
            "postgres": await observer.orders.fetchval("SHOW server_version"),
            "kafka": kafka_version(stack),
        }
    finally:
        await observer.close()
    return {"runs": runs, "peak_rss_mib": peak_rss, "profiles": profiles, "versions": versions}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    plan = Plan.quick() if args.quick else Plan()
    if args.clients:
        plan = dataclasses.replace(plan, clients=args.clients)
    if args.profile_rate:
        plan = dataclasses.replace(plan, profile_rate=args.profile_rate)
    rounds = 0 if args.profile_only else args.repeat or (1 if args.quick or args.only == "ops" else 3)
    output = args.output or (QUICK_RESULTS if args.quick or args.only else RESULTS)
    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H%M%S")
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    host = report.machine()
    # The gateway holds two descriptors per live socket (client and upstream); the services inherit this limit.
    host["open_files_limit"] = procs.raise_fd_limit(2 * plan.live_users * plan.live_sockets_per_user + 1024)

    # Parents of a PostgreSQL data directory must be traversable by the server user.
    data_dir = Path(tempfile.mkdtemp(prefix="gozon-bench-"))
    data_dir.chmod(0o755)
    stack = LocalStack(
        data_dir=data_dir,
        ports=Ports.free(),
        jar_cache=ROOT / ".data" / "kafka-dist",
        log_dir=data_dir / "logs",
        # The ops phase calls the operations endpoints, which need the operator's token.
        extra_env={**SERVICE_ENV, "GOZON_OPERATOR_TOKEN": secrets.token_urlsafe(32)},
    )
    finished = False
    try:
        log.warning("starting PostgreSQL, Kafka and the services in %s", data_dir)
        stack.start_infrastructure()
        stack.start_services()
        profile = not (args.no_profile or args.only)
        measured = uvloop.run(measure(stack, plan, rounds, profile, output, stamp, args.only))
        finished = True
    finally:
        stack.stop()
        if finished and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            log.warning("stack data and service logs kept in %s", data_dir)

    if args.profile_only:
        sys.stdout.write("".join(f"{service}: {path}\n" for service, path in measured["profiles"].items()))
        return 0
    host["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    result: dict[str, Any] = {
        "date": started,
        "quick": args.quick,
        "rounds": rounds,
        "machine": host,
        "plan": dataclasses.asdict(plan),
        **measured,
    }
    if args.only:
        return report_only(result, output, stamp)
    result |= report.summarise(measured["runs"])
    json_path = report.write_json(result, output, stamp)
    if not args.quick and args.output is None:
        report.update_readme(README, result, json_path)
    sys.stdout.write(report.table(result) + f"\n\nresults: {json_path}\n")
    return 0 if all(result["checks"].values()) else 1


def report_only(result: dict[str, Any], output: Path, stamp: str) -> int:
    """``--only``: the JSON and every round's figures of that phase; no medians, no README."""
    json_path = report.write_json(result, output, stamp)
    lines, accounted = [], []
    for index, run in enumerate(result["runs"], 1):
        if "ops" in run:
            lines += [f"-- round {index}", *report.ops_summary(run["ops"])]
            accounted.append(report.ops_accounted(run["ops"]))
        elif "retention" in run:
            lines += [f"-- round {index}", *retention.summary(run["retention"])]
            accounted.append(retention.accounted(run["retention"]))
        elif "poison" in run:
            lines += [f"-- round {index}", *report.poison_summary(run)]
            accounted.append(report.poison_accounted(run))
        else:
            lines += [f"-- round {index}", *report.saturation_summary(run)]
            accounted.append(report.saturation_accounted(run))
    sys.stdout.write("\n".join(lines) + f"\n\nresults: {json_path}\n")
    return 0 if all(accounted) else 1


if __name__ == "__main__":
    sys.exit(main())
