-- The relay is now woken by its writers after they commit (messaging.outbox.OutboxRelay.announce), not by this
-- trigger. A transaction that NOTIFYs takes a cluster-wide lock just before its commit and holds it until its WAL
-- flush is done, so every order's commit queued behind the one before it instead of sharing an fsync
-- (bench/README.md, "PostgreSQL ceiling"). A NOTIFY sent after the commit, in a transaction that writes nothing,
-- holds that lock for no flush at all.
DROP TRIGGER outbox_inserted ON outbox;
DROP FUNCTION outbox_notify();
