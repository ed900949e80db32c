-- Transactional outbox (messaging.outbox). Rows are written in the business transaction and published by the
-- relay; the partial index keeps "oldest unpublished rows of these lanes" cheap however large the table grows.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    message_id   uuid         NOT NULL UNIQUE,
    topic        varchar(249) NOT NULL,
    key          varchar(255) NOT NULL,
    lane         smallint     NOT NULL,
    payload      text         NOT NULL,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (lane, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wakes the relay when the inserting transaction commits (NOTIFY is transactional; one per statement).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
