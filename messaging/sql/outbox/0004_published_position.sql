-- Where Kafka put each event (partition and offset, from the broker's acknowledgement): an order's journey shows
-- it, so an operator can find the very record in the topic. Nullable columns without a default: adding them
-- rewrites nothing.
ALTER TABLE outbox ADD COLUMN published_partition integer, ADD COLUMN published_offset bigint;
