-- Each claim of a key carries a token, so a request completes or releases only the claim it holds (a claim taken
-- over after it went stale is its successor's). Retention deletes keys past their window, oldest first.
ALTER TABLE idempotency_keys ADD COLUMN claim uuid;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
