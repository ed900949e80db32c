"""The shape every database-backed Gozon service shares: problem+json errors, identity and request ids, the
ORM opened before the server starts, messaging started with it. On SIGTERM messaging stops first, the requests in
flight then finish against a database that is still there, and only then is it closed."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from sanic import Blueprint, Sanic
from tortoise import Tortoise, connections

from messaging import faults
from messaging.outbox import DATABASE_ERRORS
from messaging.runtime import Messaging
from servicekit import metrics, problems, requests
from servicekit.limits import MAX_BODY_BYTES, SHUTDOWN_GRACE_SECONDS
from servicekit.service import health, operations
from servicekit.service.settings import ServiceSettings

log = logging.getLogger("servicekit.service")

# A database restart or a lost connection, as the driver raises it, possibly wrapped by the ORM: a 503 to retry.
DATABASE_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)

DATABASE_CLOSE_SECONDS = 2.0
GAUGES_SECONDS = 2.0


def create(
    config: ServiceSettings,
    *,
    models: str,
    messaging: Messaging,
    blueprints: list[Blueprint],
    summary: health.Summary,
    journey: operations.Journey,
    gauges: metrics.Refresh | None = None,
) -> Sanic:
    """``gauges`` sets the service's own gauges before each scrape of ``/metrics``, after the messaging ones."""
    app = Sanic(config.name, configure_logging=False)
    # Only the gateway is public: a service needs none of Sanic Extensions (CORS, OpenAPI, injection), and their
    # per-request signal and middleware showed in the profile of every request.
    app.config.AUTO_EXTEND = False
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = SHUTDOWN_GRACE_SECONDS
    app.ctx.settings = config
    app.ctx.messaging = messaging
    app.ctx.transactions = messaging.transactions
    app.ctx.journey = journey
    problems.install(app, unreachable=DATABASE_UNREACHABLE)
    requests.install(app)
    metrics.install(app, config.name)
    for bp in blueprints:
        app.blueprint(bp)
    app.blueprint(health.blueprint(config.name, summary))
    app.blueprint(metrics.blueprint(_refreshing(messaging, gauges)))
    app.blueprint(operations.bp)

    @app.before_server_start
    async def open_database_and_messaging(app: Sanic) -> None:
        await Tortoise.init(config=config.tortoise_config(models), _enable_global_fallback=True)
        faults.configure(config.fault_points, config.handler_faults)
        messaging.start()

    @app.before_server_stop
    async def stop_messaging(app: Sanic) -> None:
        await messaging.stop()

    @app.after_server_stop
    async def close_database(app: Sanic) -> None:
        # The pool waits for every connection to come back, and a request aborted at the end of the grace period
        # may still hold one: the process is exiting, so its connections end with it.
        try:
            async with asyncio.timeout(DATABASE_CLOSE_SECONDS):
                await connections.close_all()
        except TimeoutError:
            log.warning("database connections still in use after %.0fs; exiting anyway", DATABASE_CLOSE_SECONDS)

    return app


def _refreshing(messaging: Messaging, gauges: metrics.Refresh | None) -> metrics.Refresh:
    async def refresh() -> None:
        """With the database away, a scrape still gets the counters, and the gauges as last measured."""
        try:
            async with asyncio.timeout(GAUGES_SECONDS):
                await messaging.refresh_metrics()
                if gauges is not None:
                    await gauges()
        except (TimeoutError, *DATABASE_ERRORS) as exc:
            log.warning("measuring the gauges for /metrics failed: %s", exc)

    return refresh
