-- Messages whose handling failed (messaging.dead_letters, messaging.retries), each with the Kafka record as it was
-- received: source coordinates, key, headers (a JSON array of [name, base64 value]) and the value's bytes.

-- Under retry: the consumer moved on, and the retry worker of any instance tries again when next_attempt_at comes.
CREATE TABLE message_retries (
    id               bigserial    PRIMARY KEY,
    source_topic     varchar(249) NOT NULL,
    source_partition integer      NOT NULL,
    source_offset    bigint       NOT NULL,
    key              bytea,
    headers          jsonb        NOT NULL,
    payload          bytea,
    attempts         integer      NOT NULL CHECK (attempts > 0),
    error_class      text         NOT NULL,
    error_message    text         NOT NULL,
    first_failed_at  timestamptz  NOT NULL,
    last_failed_at   timestamptz  NOT NULL,
    next_attempt_at  timestamptz  NOT NULL,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX message_retries_due ON message_retries (next_attempt_at);

-- Given up on: kept until an operator replays or discards it, and copied to <topic>.dlq. One letter per received
-- record, however often the record is delivered (the unique source).
CREATE TABLE dead_letters (
    id               bigserial    PRIMARY KEY,
    source_topic     varchar(249) NOT NULL,
    source_partition integer      NOT NULL,
    source_offset    bigint       NOT NULL,
    key              bytea,
    headers          jsonb        NOT NULL,
    payload          bytea,
    message_id       uuid,
    type             varchar(64),
    order_id         uuid,
    reason           text         NOT NULL,
    error_class      text         NOT NULL,
    error_message    text         NOT NULL,
    attempts         integer      NOT NULL CHECK (attempts > 0),
    first_failed_at  timestamptz  NOT NULL,
    last_failed_at   timestamptz  NOT NULL,
    state            varchar(16)  NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'REPLAYED', 'DISCARDED')),
    replays          integer      NOT NULL DEFAULT 0,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    published_at     timestamptz,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_unpublished ON dead_letters (id) WHERE published_at IS NULL;
CREATE INDEX dead_letters_order ON dead_letters (order_id) WHERE order_id IS NOT NULL;
