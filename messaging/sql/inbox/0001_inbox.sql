-- Transactional inbox (messaging.inbox): one row per consumed message id, written with the message's effect.
CREATE TABLE inbox (
    message_id  uuid        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_received_at ON inbox (received_at);
