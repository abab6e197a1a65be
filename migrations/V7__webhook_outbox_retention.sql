-- V7: webhook outbox retention. `finished_ms` is when a delivery reached its final state
-- (delivered, or given up after the maximum age), in ms since the epoch; NULL while it is
-- pending. The writer purges finished rows older than HPTS_WEBHOOK_RETENTION_HOURS through the
-- partial index below, which holds finished rows only: a new (pending) row is never written to
-- it, so the write path pays nothing; a row enters it once, when its delivery is recorded.
ALTER TABLE webhook_outbox ADD COLUMN finished_ms INTEGER
    CHECK (finished_ms IS NULL OR typeof(finished_ms) = 'integer');
-- Rows finished before this version: a delivered row's time comes from its `delivered_at`
-- (RFC 3339, UTC); a given-up row has no time of its own, its last scheduled attempt stands in.
UPDATE webhook_outbox
   SET finished_ms = CAST(unixepoch(delivered_at, 'subsec') * 1000 AS INTEGER)
 WHERE status = 'delivered' AND delivered_at IS NOT NULL;
UPDATE webhook_outbox SET finished_ms = next_attempt_ms
 WHERE status = 'failed' OR (status = 'delivered' AND finished_ms IS NULL);
CREATE INDEX webhook_outbox_finished ON webhook_outbox (finished_ms) WHERE finished_ms IS NOT NULL;
