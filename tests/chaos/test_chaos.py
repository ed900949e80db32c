"""The short chaos run inside ``make test``: a few hundred orders through two instances of each service while one
fault of each kind strikes, every invariant checked during and after. ``make chaos`` runs the long form.

The seed is new on every run (the schedule explores), printed in the failure; ``GOZON_CHAOS_SEED=N`` replays one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from stack.local import ROOT
from tests.chaos import harness, report
from tests.chaos.config import ChaosConfig
from tests.chaos.faults import KINDS

log = logging.getLogger("chaos")

RESULTS = ROOT / "tests" / "artifacts" / "chaos"

pytestmark = pytest.mark.slow


def test_money_moves_exactly_once_per_order_whatever_fails() -> None:
    seed = int(os.environ.get("GOZON_CHAOS_SEED") or random.randrange(1_000_000))
    # The harness owns a whole stack and its own event loop: a thread keeps it apart from pytest's loop.
    with ThreadPoolExecutor(1) as thread:
        result = thread.submit(asyncio.run, harness.run(ChaosConfig.short(seed))).result()
    path = report.write(result, RESULTS)
    summary = report.table(result)
    log.info("chaos run, report in %s\n%s", path, summary)

    violations = result["violations"]
    assert violations["total"] == 0, (
        f"{summary}\n{json.dumps(violations['details'], indent=2)}\n"
        f"replay with GOZON_CHAOS_SEED={seed}; service logs in {harness.LOG_DIR}"
    )
    assert set(result["faults"]) == set(KINDS), summary
    assert result["orders"]["accepted_201"] >= ChaosConfig.short(seed).orders, summary
