"""The consumer on real Kafka and PostgreSQL, with handlers of the test's own.

It applies a poll's messages in one transaction (the handler given the whole run at once), and a batch that fails is
redone one message at a time: every message still takes effect exactly once and in order. What happens to a message
that cannot be applied depends on why: an invalid or rejected one is dead-lettered at once, a transient failure is
retried in place, and any other failure sets the message aside for the retry worker while the messages behind it
(of the same key too) go on; it is applied when a retry succeeds, and dead-lettered when the attempts run out."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import asyncpg
import pytest
from tortoise import connections

from messaging.consumer import Dispatcher, EventConsumer, Handler, Rejected, RetryWorker
from messaging.dead_letters import DeadLetter, DeadLetterRelay, DeadLetters
from messaging.events import Envelope, PaymentRequested
from messaging.kafka import KafkaSettings, make_consumer, make_producer
from messaging.retries import Failures, MessageRetry, RetryPolicy
from messaging.topics import dead_letter_topic
from messaging.unit_of_work import Transactions, UnitOfWork
from stack import kafka
from stack.local import LocalStack
from tests.helpers import eventually
from tests.integration.kafka_tools import producer, read_all

pytestmark = pytest.mark.usefixtures("orders_orm")

MESSAGES = 20
# Attempts spread over a short budget, so the tests see a message exhaust them.
POLICY = RetryPolicy(max_attempts=3, budget_seconds=0.6)
NO_RELAY = Transactions(relay=lambda: None)


class ScratchRetries(MessageRetry):
    """Tables of their own: the orders service's retry worker (it shares the database) must not see these rows."""

    class Meta:
        table = "scratch_retries"


class ScratchDeadLetters(DeadLetter):
    class Meta:
        table = "scratch_dead_letters"


@pytest.fixture
async def failures(orders_owner_db: asyncpg.Pool) -> AsyncIterator[Failures]:
    await orders_owner_db.execute(
        "CREATE TABLE scratch_retries (LIKE message_retries INCLUDING ALL);"
        "CREATE TABLE scratch_dead_letters (LIKE dead_letters INCLUDING ALL)"
    )
    yield Failures(ScratchRetries, DeadLetters(ScratchDeadLetters), POLICY)
    await orders_owner_db.execute("DROP TABLE scratch_retries; DROP TABLE scratch_dead_letters")


@pytest.fixture
async def effects(orders_owner_db: asyncpg.Pool) -> AsyncIterator[str]:
    """A scratch table the test handlers write to: one row per application, so a double one shows."""
    table = f"effects_{uuid.uuid4().hex[:8]}"
    await orders_owner_db.execute(f"CREATE TABLE {table} (seq bigserial, message_id uuid NOT NULL)")
    yield table
    await orders_owner_db.execute(f"DROP TABLE {table}")


async def new_topic(infra: LocalStack, partitions: int) -> str:
    name = f"batches-{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(infra.broker.bootstrap_servers, [name, dead_letter_topic(name)], partitions=partitions)
    return name


@pytest.fixture
async def topic(infra: LocalStack) -> str:
    return await new_topic(infra, partitions=1)


async def publish(bootstrap_servers: str, topic: str, users: int = 1, raw: dict[int, bytes] | None = None) -> list:
    """Every message is on its partition before the consumer starts, so its first poll brings them together.
    ``raw`` replaces the message at that index with other bytes."""
    owners = [f"batch-user-{n % users}" for n in range(MESSAGES)]
    envelopes = [Envelope(PaymentRequested(uuid.uuid4(), owner, Decimal("1.00"))) for owner in owners]
    async with producer(bootstrap_servers) as client:
        for index, (owner, envelope) in enumerate(zip(owners, envelopes, strict=True)):
            value = (raw or {}).get(index, envelope.to_json().encode())
            await (await client.send(topic, value, key=owner.encode()))
    return envelopes


async def consume_until(
    infra: LocalStack,
    topic: str,
    handler: Handler,
    failures: Failures,
    done: Callable[[], Awaitable[bool]],
    with_retry_worker: bool = False,
) -> tuple[EventConsumer, RetryWorker]:
    settings = KafkaSettings(bootstrap_servers=infra.broker.bootstrap_servers, client_id="batch-tests")
    kafka_consumer = make_consumer(settings, topic, f"group-{topic}")
    await kafka_consumer.start()
    dispatcher = Dispatcher({PaymentRequested.TYPE: handler}, failures)
    consumer = EventConsumer(kafka_consumer, dispatcher, service="scratch", transactions=NO_RELAY)
    worker = RetryWorker({topic: dispatcher}, failures, service="scratch", transactions=NO_RELAY, poll_interval=0.05)
    tasks = [asyncio.create_task(consumer.run())]
    if with_retry_worker:
        tasks.append(asyncio.create_task(worker.run()))
    try:
        await eventually(done)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await kafka_consumer.stop()
    return consumer, worker


def recording(table: str) -> Handler:
    async def record(envelopes: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        for envelope in envelopes:
            await work.conn.execute_query(f"INSERT INTO {table} (message_id) VALUES ($1)", [envelope.message_id])
        return []

    return record


async def applied(table: str) -> list[uuid.UUID]:
    _, rows = await connections.get("default").execute_query(f"SELECT message_id FROM {table} ORDER BY seq")
    return [row["message_id"] for row in rows]


async def letters() -> list[dict]:
    _, rows = await connections.get("default").execute_query(
        "SELECT message_id, reason, error_class, error_message, attempts, payload, source_offset, headers "
        "FROM scratch_dead_letters ORDER BY id"
    )
    return rows


async def waiting_retries() -> int:
    _, rows = await connections.get("default").execute_query("SELECT count(*) AS n FROM scratch_retries")
    return rows[0]["n"]


async def test_a_partitions_batch_commits_once(infra: LocalStack, topic: str, effects: str, failures: Failures) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    record, runs = recording(effects), []

    async def handler(run: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        runs.append(len(run))
        return await record(run, work)

    consumer, _ = await consume_until(infra, topic, handler, failures, all_applied)

    assert await applied(effects) == [envelope.message_id for envelope in envelopes]
    assert consumer.stats.processed == MESSAGES
    assert consumer.stats.transactions < MESSAGES
    # The handler got the batch's messages as one run, so it could apply them in one statement.
    assert len(runs) == consumer.stats.transactions


async def test_a_poll_across_partitions_commits_once(infra: LocalStack, effects: str, failures: Failures) -> None:
    partitions = 3
    topic = await new_topic(infra, partitions)
    envelopes = await publish(infra.broker.bootstrap_servers, topic, users=12)

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    consumer, _ = await consume_until(infra, topic, recording(effects), failures, all_applied)

    assert sorted(await applied(effects)) == sorted(envelope.message_id for envelope in envelopes)
    # One transaction a partition would be at least three.
    assert consumer.stats.transactions < partitions


async def test_an_invalid_message_is_dead_lettered_at_once_with_the_rule_it_broke(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    too_much = {"amount": "99999999999999.999"}
    template = json.loads(Envelope(PaymentRequested(uuid.uuid4(), "batch-user-0", Decimal("1.00"))).to_json())
    envelopes = await publish(infra.broker.bootstrap_servers, topic, raw={7: json.dumps(template | too_much).encode()})

    async def rest_applied() -> bool:
        return len(await applied(effects)) == MESSAGES - 1

    consumer, _ = await consume_until(infra, topic, recording(effects), failures, rest_applied)

    assert await applied(effects) == [e.message_id for i, e in enumerate(envelopes) if i != 7]
    [letter] = await letters()
    assert letter["reason"] == "'amount' must be at most 1000000000.00. Got '99999999999999.999'."
    assert (letter["error_class"], letter["attempts"], letter["source_offset"]) == ("InvalidMessage", 1, 7)
    assert json.loads(letter["payload"])["amount"] == "99999999999999.999"
    assert consumer.stats.dead_lettered == 1
    assert await waiting_retries() == 0


async def test_a_rejected_message_is_dead_lettered_and_the_rest_of_its_run_applied(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)
    refused = envelopes[3].message_id
    record = recording(effects)

    async def handler(run: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        await record([envelope for envelope in run if envelope.message_id != refused], work)
        return [Rejected(envelope, "claims what is not so") for envelope in run if envelope.message_id == refused]

    async def rest_applied() -> bool:
        return len(await applied(effects)) == MESSAGES - 1

    await consume_until(infra, topic, handler, failures, rest_applied)

    [letter] = await letters()
    assert (letter["message_id"], letter["reason"], letter["error_class"]) == (
        refused,
        "claims what is not so",
        "Rejected",
    )


async def test_a_transient_failure_is_retried_in_place_and_applied_once(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)
    flaky = {envelopes[10].message_id: 2}
    record = recording(effects)

    async def handler(run: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        await record(run, work)
        for envelope in run:
            if flaky.get(envelope.message_id):
                flaky[envelope.message_id] -= 1
                raise ConnectionResetError("the database went away mid-transaction")
        return []

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    consumer, _ = await consume_until(infra, topic, handler, failures, all_applied)

    assert await applied(effects) == [envelope.message_id for envelope in envelopes]
    assert consumer.stats.retries >= 1
    assert consumer.stats.set_aside == 0
    assert await letters() == []


async def test_a_failing_message_is_set_aside_the_ones_behind_it_go_on_and_a_retry_applies_it(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)
    bug = envelopes[4].message_id
    failing = {bug: 3}  # the batch and the consumer's own attempt, then the first retry; the second retry applies it
    record = recording(effects)

    async def handler(run: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        await record(run, work)
        for envelope in run:
            if failing.get(envelope.message_id):
                failing[envelope.message_id] -= 1
                raise ZeroDivisionError("a bug")
        return []

    async def all_but_it_applied() -> bool:
        return set(await applied(effects)) == {envelope.message_id for envelope in envelopes} - {bug}

    async def all_applied() -> bool:
        return len(await applied(effects)) == MESSAGES

    # The messages behind it, of its own key, go on without it; then the retry worker applies it, once.
    consumer, _ = await consume_until(infra, topic, handler, failures, all_but_it_applied)
    dispatcher = Dispatcher({PaymentRequested.TYPE: handler}, failures)
    worker = RetryWorker({topic: dispatcher}, failures, service="scratch", transactions=NO_RELAY)
    retrying = asyncio.create_task(worker.run())
    try:
        await eventually(all_applied)
    finally:
        retrying.cancel()
        await asyncio.gather(retrying, return_exceptions=True)

    order = await applied(effects)
    assert order[-1] == bug
    assert sorted(order) == sorted(envelope.message_id for envelope in envelopes)
    assert (consumer.stats.set_aside, worker.recovered) == (1, 1)
    assert await letters() == []
    assert await waiting_retries() == 0


async def test_a_message_that_keeps_failing_is_dead_lettered_when_its_attempts_run_out(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    envelopes = await publish(infra.broker.bootstrap_servers, topic)
    bug = envelopes[0].message_id
    record = recording(effects)

    async def handler(run: list[Envelope], work: UnitOfWork) -> list[Rejected]:
        await record(run, work)
        if any(envelope.message_id == bug for envelope in run):
            raise KeyError("always")
        return []

    async def dead_lettered() -> list[dict]:
        return await letters()

    _, worker = await consume_until(infra, topic, handler, failures, dead_lettered, with_retry_worker=True)

    assert await applied(effects) == [envelope.message_id for envelope in envelopes[1:]]
    [letter] = await letters()
    assert letter["message_id"] == bug
    assert letter["attempts"] == POLICY.max_attempts
    assert letter["reason"] == f"failed {POLICY.max_attempts} times; giving up"
    assert (letter["error_class"], letter["error_message"]) == ("KeyError", "'always'")
    assert await waiting_retries() == 0
    assert worker.dead_lettered == 1


async def test_the_dead_letter_relay_copies_a_letter_with_the_original_bytes_and_its_facts(
    infra: LocalStack, topic: str, effects: str, failures: Failures
) -> None:
    garbage = b"\xff not an event"
    await publish(infra.broker.bootstrap_servers, topic, raw={2: garbage})

    async def dead_lettered() -> list[dict]:
        return await letters()

    await consume_until(infra, topic, recording(effects), failures, dead_lettered)
    settings = KafkaSettings(bootstrap_servers=infra.broker.bootstrap_servers, client_id="dlq-tests")
    client = make_producer(settings)
    await client.start()
    try:
        relay = DeadLetterRelay(failures.dead_letters, "orders")
        assert await relay.publish_batch(client) == 1
        assert await relay.publish_batch(client) == 0
    finally:
        await client.stop()

    [copy] = await read_all(infra.broker.bootstrap_servers, dead_letter_topic(topic))
    headers = {name: value.decode() for name, value in copy.headers}
    assert copy.value == garbage
    assert copy.key == b"batch-user-0"
    assert headers["dlq.reason"] == "not JSON"
    assert headers["dlq.source"] == f"{topic}/0/2"
    assert headers["dlq.service"] == "orders"
