-- The payment deadline (orders.deadline): an order PENDING too long is asked about again each deadline, and may
-- end FAILED with PAYMENT_TIMEOUT. The partial index holds only PENDING orders, keyed by when they are next due.
ALTER TABLE orders ADD COLUMN expiry_requested_at timestamptz;
CREATE INDEX orders_awaiting_payment ON orders ((coalesce(expiry_requested_at, created_at))) WHERE status = 'PENDING';
ALTER TABLE orders DROP CONSTRAINT orders_failure_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_failure_reason_check
    CHECK (failure_reason IN ('INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND', 'PAYMENT_TIMEOUT')) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_failure_reason_check;
