-- Idempotency-Key records (servicekit.idempotency): the first response to a (user, key) pair, kept 24 hours.
CREATE TABLE idempotency_keys (
    id           bigserial PRIMARY KEY,
    user_id      varchar(64)  NOT NULL,
    key          varchar(255) NOT NULL,
    fingerprint  char(64)     NOT NULL,
    status_code  smallint,
    response     text,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (user_id, key)
);
