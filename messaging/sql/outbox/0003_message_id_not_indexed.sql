-- The unique index on message_id cost every event two random-page B-tree inserts: one with the row, and one more
-- when the relay marks it published (that UPDATE cannot be HOT, since published_at is in the partial indexes).
-- Nothing looks an outbox row up by message_id, and it cannot catch a duplicate that matters: each id is a fresh
-- uuid4 minted with its event in the transaction that writes it. Duplicates are stopped where they arrive: the
-- consumers' inbox (primary key on message_id) and the business keys (one ledger row per order).
ALTER TABLE outbox DROP CONSTRAINT outbox_message_id_key;
