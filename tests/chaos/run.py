"""``python -m tests.chaos.run [--long] [--seed N]``: one chaos run, its summary table, its JSON report.

Exits 1 if any violation was found. ``make chaos`` runs the long form.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import random
import sys

from stack.local import ROOT
from tests.chaos import harness, report
from tests.chaos.config import ChaosConfig

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="at least 100,000 orders and 20 faults of each kind")
    parser.add_argument("--seed", type=int, default=None, help="reproduce the fault schedule of an earlier run")
    parser.add_argument("--faults-per-kind", type=int, default=None, help="override the form's number")
    parser.add_argument("--orders", type=int, default=None, help="override the form's minimum of accepted orders")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("aiokafka", "httpx", "stack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    config = ChaosConfig.long(seed) if args.long else ChaosConfig.short(seed)
    if args.faults_per_kind is not None:
        # More faults need more time to start in, at the same pace.
        period = config.fault_period * args.faults_per_kind / config.faults_per_kind
        config = dataclasses.replace(config, faults_per_kind=args.faults_per_kind, fault_period=period)
    if args.orders is not None:
        config = dataclasses.replace(config, orders=args.orders)
    result = asyncio.run(harness.run(config))
    path = report.write(result, RESULTS)
    print(report.table(result), f"\nreport: {path.relative_to(ROOT)}", sep="\n")  # noqa: T201 - the run's output
    return 1 if result["violations"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
