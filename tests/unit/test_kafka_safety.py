"""Each service refuses to start with Kafka settings that could lose or duplicate money."""

import dataclasses

import pytest

from messaging.kafka import KafkaSettings, UnsafeKafkaSettings
from orders import settings as orders_settings
from orders.app import create_app as create_orders
from payments import settings as payments_settings
from payments.app import create_app as create_payments

UNSAFE = [
    ("producer_overrides", (("enable_idempotence", False),), "enable_idempotence"),
    ("producer_overrides", (("acks", 1),), "acks"),
    ("consumer_overrides", (("enable_auto_commit", True),), "enable_auto_commit"),
]


@pytest.mark.parametrize(
    ("service", "settings"), [(create_orders, orders_settings), (create_payments, payments_settings)]
)
@pytest.mark.parametrize(("field", "overrides", "named"), UNSAFE)
def test_service_refuses_unsafe_kafka_settings(service, settings, field: str, overrides: tuple, named: str) -> None:
    config = settings.from_env({})
    unsafe = dataclasses.replace(config, kafka=dataclasses.replace(config.kafka, **{field: overrides}))

    with pytest.raises(UnsafeKafkaSettings, match=named):
        service(unsafe)


def test_default_settings_are_safe() -> None:
    producer = KafkaSettings().producer_config()
    consumer = KafkaSettings().consumer_config("g")
    assert (producer["enable_idempotence"], producer["acks"], consumer["enable_auto_commit"]) == (True, "all", False)
