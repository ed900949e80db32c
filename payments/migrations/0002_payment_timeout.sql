-- An order Orders asked to close past its payment deadline is decided FAILED with PAYMENT_TIMEOUT, if the ledger
-- had no decision for it yet.
ALTER TABLE payments DROP CONSTRAINT payments_failure_reason_check;
ALTER TABLE payments ADD CONSTRAINT payments_failure_reason_check
    CHECK (failure_reason IN ('INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND', 'PAYMENT_TIMEOUT')) NOT VALID;
ALTER TABLE payments VALIDATE CONSTRAINT payments_failure_reason_check;
