"""Named fault points and handler faults for the fault-injection harness and the tests. Nothing is armed until the
process calls ``configure`` with what its settings say (``GOZON_FAULT_POINTS``, ``GOZON_HANDLER_FAULTS``); unarmed
(always, outside them), a fault point is one lookup in an empty frozenset and a handler fault one lookup in an empty
dict.

``GOZON_FAULT_POINTS`` arms fault points, comma-separated:

- ``relay.after_ack=0.05``: the process kills itself with SIGKILL there, with that probability;
- ``relay.before_batch=raise:2``: ``InjectedFault`` is raised there the first 2 times it is reached
  (``raise`` alone: every time), as an unexpected bug in that loop would.

``GOZON_HANDLER_FAULTS`` makes the consumer's handling of chosen events fail, as a handler bug would:
``payment.requested:alice=2`` raises ``InjectedFault`` on the first 2 attempts at every ``payment.requested`` of user
``alice`` (and then lets it through), ``payment.succeeded:bob=always`` on every attempt. A user id ending in ``*``
is a prefix: ``payment.requested:broken-*=always`` fails the commands of every user whose id starts ``broken-``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger("messaging.faults")

ALWAYS = -1


class InjectedFault(RuntimeError):
    """Raised where a fault point or handler fault says so."""


@dataclass(frozen=True)
class Point:
    kill_probability: float = 0.0
    raises: int = 0
    """How many times it raises (ALWAYS: every time); 0 for a point that kills."""


def _parse_points(spec: str) -> dict[str, Point]:
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        if action.startswith("raise"):
            _, _, times = action.partition(":")
            points[name] = Point(raises=int(times) if times else ALWAYS)
        else:
            points[name] = Point(kill_probability=float(action or 1))
    return points


def _parse_handler_faults(spec: str) -> dict[tuple[str, str], int]:
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        target, _, times = item.partition("=")
        event_type, _, user_id = target.partition(":")
        faults[(event_type, user_id)] = ALWAYS if times == "always" else int(times)
    return faults


_POINTS: dict[str, Point] = {}
_NAMES: frozenset[str] = frozenset()
_REACHED: Counter[str] = Counter()
_HANDLER_FAULTS: dict[tuple[str, str], int] = {}


def configure(points: str = "", handler_faults: str = "") -> None:
    """Arm the fault points and handler faults these specifications name (empty: none), in place of any armed
    before. Called once as the process starts, from its settings."""
    global _POINTS, _NAMES, _HANDLER_FAULTS
    _POINTS = _parse_points(points)
    _NAMES = frozenset(_POINTS)
    _REACHED.clear()
    _HANDLER_FAULTS = _parse_handler_faults(handler_faults)


def point(name: str) -> None:
    if name not in _NAMES:
        return
    armed = _POINTS[name]
    if armed.raises:
        _REACHED[name] += 1
        if armed.raises == ALWAYS or _REACHED[name] <= armed.raises:
            log.warning("fault point %s: raising (time %d)", name, _REACHED[name])
            raise InjectedFault(f"fault point {name}")
    elif random.random() < armed.kill_probability:
        log.warning("fault point %s: killing process %d", name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


def before_handling(event_type: str, user_id: str | None, attempt: int) -> None:
    """Called by the consumer before it hands an event to its handler, ``attempt`` counting from 1."""
    if not _HANDLER_FAULTS or user_id is None:
        return
    for (kind, pattern), times in _HANDLER_FAULTS.items():
        if kind == event_type and _matches(pattern, user_id) and (times == ALWAYS or attempt <= times):
            raise InjectedFault(f"handler fault for {event_type} of {user_id} (attempt {attempt})")


def _matches(pattern: str, user_id: str) -> bool:
    return user_id.startswith(pattern[:-1]) if pattern.endswith("*") else user_id == pattern
