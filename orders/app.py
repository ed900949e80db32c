"""The Orders service's composition root: ``python -m orders`` or ``sanic orders.app:create_app --factory``."""

from __future__ import annotations

from sanic import Sanic

from messaging.runtime import FailureTables, Messaging, Subscription
from orders import api, handlers, journey, live, service, settings
from orders.deadline import PaymentDeadline
from orders.live import LiveHub
from orders.models import DeadLetter, MessageRetry, OrdersIdempotencyKey, Outbox
from orders.settings import LiveLimits
from servicekit.service import app as service_app
from servicekit.service import idempotency
from servicekit.service.settings import ServiceSettings


def create_app(
    config: ServiceSettings | None = None, limits: LiveLimits | None = None, payment_deadline: float | None = None
) -> Sanic:
    config = config or settings.from_env()
    hub = LiveHub(limits or settings.live_limits())
    messaging = Messaging(
        service=config.name,
        kafka=config.kafka,
        dsn=config.database_url,
        outbox=Outbox,
        subscriptions=[Subscription(config.topics.payment_results, config.consumer_group, handlers.HANDLERS)],
        failures=FailureTables(retries=MessageRetry, dead_letters=DeadLetter),
        retry_policy=config.retry_policy,
        cleanups=[lambda: idempotency.delete_expired(OrdersIdempotencyKey)],
        relay_batch=config.relay_batch,
        retention_seconds=config.retention_seconds,
        channels={service.STATUS_CHANNEL: hub.on_status_changed},
        on_reconnect=hub.resnapshot,
    )
    deadline = PaymentDeadline(
        payment_deadline or settings.payment_deadline_seconds(), config.topics.payment_commands, messaging.transactions
    )
    messaging.also_run("payment-deadline", deadline.run)
    app = service_app.create(
        config,
        models="orders.models",
        messaging=messaging,
        blueprints=[api.bp, live.bp],
        summary=service.summary,
        journey=journey.journey,
        gauges=deadline.refresh_metrics,
    )
    app.ctx.live = hub
    app.ctx.deadline = deadline
    app.before_server_stop(lambda _app: hub.close_all())
    return app
