"""The gateway's composition root: ``python -m gateway`` or ``sanic gateway.app:create_app --factory``."""

from __future__ import annotations

from sanic import Sanic
from sanic_ext import Extend
from sanic_ext.extensions.http.extension import HTTPExtension

from gateway import live, operations, operators, routes
from gateway.operators import OPERATIONS_PREFIX, OperatorAccess
from gateway.settings import Settings
from gateway.upstreams import Upstream, open_client
from servicekit import metrics, problems, requests
from servicekit.limits import MAX_BODY_BYTES, SHUTDOWN_GRACE_SECONDS
from servicekit.metrics import METRICS_PATH


def create_app(settings: Settings | None = None) -> Sanic:
    settings = settings or Settings.from_env()
    app = Sanic("gateway", configure_logging=False)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = SHUTDOWN_GRACE_SECONDS
    app.config.CORS_ORIGINS = settings.cors_origins
    app.config.CORS_ALLOW_HEADERS = "authorization,content-type,x-user-id,x-request-id,idempotency-key"
    app.config.CORS_EXPOSE_HEADERS = "x-request-id,idempotent-replayed"
    app.ctx.settings = settings
    app.ctx.upstreams = {
        "orders": Upstream("orders", settings.orders_urls),
        "payments": Upstream("payments", settings.payments_urls),
    }
    # Of Sanic Extensions the gateway needs CORS only: not the injection signal nor the OpenAPI blueprint that the
    # default set adds to every request or to the app.
    Extend(app, extensions=[HTTPExtension], built_in_extensions=False)
    problems.install(app)
    requests.install(app, public_paths=("/health", "/ready", METRICS_PATH, OPERATIONS_PREFIX))
    metrics.install(app, "gateway")
    operators.install(app, OperatorAccess(settings.operator_token, settings.operator_name))
    app.blueprint(routes.bp)
    app.blueprint(operations.bp)
    app.blueprint(live.bp)
    app.blueprint(metrics.blueprint())

    @app.before_server_start
    async def open_http_client(app: Sanic) -> None:
        app.ctx.http = open_client(settings.max_connections, settings.upstream_timeout)

    @app.after_server_stop
    async def close_http_client(app: Sanic) -> None:
        await app.ctx.http.close()

    return app
