CREATE TABLE orders (
    id             uuid          PRIMARY KEY,
    user_id        varchar(64)   NOT NULL,
    amount         numeric(12,2) NOT NULL CHECK (amount > 0),
    description    varchar(500),
    status         varchar(16)   NOT NULL CHECK (status IN ('PENDING', 'PAID', 'FAILED')),
    failure_reason varchar(32)   CHECK (failure_reason IN ('INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND')),
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now(),
    CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL))
);
-- GET /orders: one user's orders, newest first.
CREATE INDEX orders_user_newest ON orders (user_id, created_at DESC, id DESC);
-- Operations page: orders settled per interval over the last minutes.
CREATE INDEX orders_settled_at ON orders (updated_at) WHERE status <> 'PENDING';
