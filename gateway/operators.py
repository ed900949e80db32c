"""Operator-only access to the operations endpoints: ``Authorization: Bearer <operator token>``, compared in constant
time. ``X-User-Id`` plays no part in it: an ordinary user's identity never opens another user's data."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sanic import Request, Sanic

from servicekit.metrics import METRICS_PATH
from servicekit.problems import Unauthorized

OPERATIONS_PREFIX = "/ops"
OPERATOR_HEADER = "X-Gozon-Operator"
"""Who acted, as the gateway forwards it to the services for their audit log."""
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gozon-operations"'}


@dataclass(frozen=True)
class OperatorAccess:
    token: str
    """Empty when none is configured: then no request is an operator's."""
    name: str = "operator"

    def operator_of(self, authorization: str | None) -> str:
        """The operator's name, or a 401 that says nothing of how close the credentials were."""
        scheme, _, credentials = (authorization or "").partition(" ")
        presented = credentials.strip().encode()
        if scheme.lower() != "bearer" or not self.token or not hmac.compare_digest(presented, self.token.encode()):
            raise Unauthorized(
                "The operations endpoints need Authorization: Bearer <operator token>.", headers=CHALLENGE
            )
        return self.name


def is_operations(path: str) -> bool:
    """The operations endpoints, and the gateway's own ``/metrics``: it is on the public port (the services' are on
    their internal ones, and the gateway never forwards to them)."""
    return path in (OPERATIONS_PREFIX, METRICS_PATH) or path.startswith(OPERATIONS_PREFIX + "/")


def install(app: Sanic, access: OperatorAccess) -> None:
    @app.on_request(priority=90)
    async def authorise(request: Request) -> None:
        if is_operations(request.path) and request.method != "OPTIONS":
            request.ctx.operator = access.operator_of(request.headers.get("authorization"))
