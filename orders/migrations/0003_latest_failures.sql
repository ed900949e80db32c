-- The Operations page's latest failures, at any table size: ten index entries, whatever the share of failed orders.
-- Only failed orders enter it, so the settle of a paid order does not pay for it.
CREATE INDEX orders_failed_newest ON orders (updated_at DESC) WHERE status = 'FAILED';
