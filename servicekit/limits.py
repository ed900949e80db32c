"""Limits every Gozon HTTP process shares, gateway and services alike."""

from __future__ import annotations

MAX_BODY_BYTES = 1024 * 1024
# A SIGTERM's budget, well under the 15 s after which supervisors (ours, Docker's 10 s) SIGKILL: Kafka clients
# 3 s (messaging.runtime), then the HTTP grace, then closing the database. Sanic keeps serving the keep-alive
# connections that were busy when the stop began until they go quiet, which under steady traffic is the whole
# grace period (its default is 15 s).
SHUTDOWN_GRACE_SECONDS = 5.0
