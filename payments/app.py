"""The Payments service's composition root: ``python -m payments`` or ``sanic payments.app:create_app --factory``."""

from __future__ import annotations

from sanic import Sanic

from messaging.runtime import FailureTables, Messaging, Subscription
from payments import api, handlers, journey, service, settings
from payments.models import DeadLetter, Inbox, MessageRetry, Outbox, PaymentsIdempotencyKey
from servicekit.service import app as service_app
from servicekit.service import idempotency
from servicekit.service.settings import ServiceSettings


def create_app(config: ServiceSettings | None = None) -> Sanic:
    config = config or settings.from_env()
    messaging = Messaging(
        service=config.name,
        kafka=config.kafka,
        dsn=config.database_url,
        outbox=Outbox,
        subscriptions=[
            Subscription(
                config.topics.payment_commands,
                config.consumer_group,
                handlers.handlers(config.topics.payment_results),
            )
        ],
        failures=FailureTables(retries=MessageRetry, dead_letters=DeadLetter),
        retry_policy=config.retry_policy,
        inbox=Inbox,
        cleanups=[lambda: idempotency.delete_expired(PaymentsIdempotencyKey)],
        relay_batch=config.relay_batch,
        retention_seconds=config.retention_seconds,
    )
    return service_app.create(
        config,
        models="payments.models",
        messaging=messaging,
        blueprints=[api.bp],
        summary=service.summary,
        journey=journey.journey,
    )
