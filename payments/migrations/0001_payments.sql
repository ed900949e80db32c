CREATE TABLE accounts (
    user_id    varchar(64)   PRIMARY KEY,
    balance    numeric(18,2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at timestamptz   NOT NULL DEFAULT now(),
    updated_at timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE deposits (
    id         bigserial     PRIMARY KEY,
    user_id    varchar(64)   NOT NULL REFERENCES accounts (user_id),
    amount     numeric(12,2) NOT NULL CHECK (amount > 0),
    created_at timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX deposits_user ON deposits (user_id);

-- The payments ledger: one decision per order, ever. The primary key on order_id is what makes a second debit
-- for the same order impossible, whatever message carried the command and however long ago.
CREATE TABLE payments (
    order_id       uuid          PRIMARY KEY,
    user_id        varchar(64)   NOT NULL,
    amount         numeric(12,2) NOT NULL CHECK (amount > 0),
    status         varchar(16)   NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED')),
    failure_reason varchar(32)   CHECK (failure_reason IN ('INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND')),
    message_id     uuid          NOT NULL,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL))
);
CREATE INDEX payments_user ON payments (user_id);
