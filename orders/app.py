"""The Orders service's composition root: ``python -m orders`` or ``sanic orders.app:create_app --factory``."""

from __future__ import annotations

from sanic import Sanic

from messaging.runtime import Messaging, Subscription
from orders import api, handlers, live, service, settings
from orders.live import LiveHub, LiveLimits
from orders.models import Outbox
from servicekit import service_app
from servicekit.settings import ServiceSettings


def create_app(config: ServiceSettings | None = None, limits: LiveLimits | None = None) -> Sanic:
    config = config or settings.from_env()
    hub = LiveHub(limits or settings.live_limits())
    messaging = Messaging(
        kafka=config.kafka,
        dsn=config.database_url,
        outbox=Outbox,
        subscriptions=[Subscription(config.topics.payment_results, config.consumer_group, handlers.HANDLERS)],
        relay_batch=config.relay_batch,
        retention_seconds=config.retention_seconds,
        channels={service.STATUS_CHANNEL: hub.on_status_changed},
        on_reconnect=hub.resnapshot,
    )
    app = service_app.create(
        config, models="orders.models", messaging=messaging, blueprints=[api.bp, live.bp], summary=service.summary
    )
    app.ctx.live = hub
    app.before_server_stop(lambda _app: hub.close_all())
    return app
