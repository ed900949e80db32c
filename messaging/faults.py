"""Named fault points for the fault-injection harness.

``GOZON_FAULT_POINTS="relay.after_ack=0.05,consumer.after_db_commit=0.01"`` makes the process kill itself
with SIGKILL when it reaches that point, with that probability. Unset (always, outside the harness), a point
is one lookup in an empty frozenset.
"""

from __future__ import annotations

import logging
import os
import random
import signal

log = logging.getLogger("messaging.faults")


def _parse(spec: str) -> dict[str, float]:
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition("=")
        points[name] = float(probability or 1)
    return points


_ENABLED = _parse(os.environ.get("GOZON_FAULT_POINTS", ""))
_NAMES = frozenset(_ENABLED)


def point(name: str) -> None:
    if name in _NAMES and random.random() < _ENABLED[name]:
        log.warning("fault point %s: killing process %d", name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
