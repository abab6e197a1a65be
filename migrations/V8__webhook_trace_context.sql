-- The W3C `traceparent` of the request that posted the entry, when spans are exported: the
-- webhook delivery span joins that trace, so one trace runs from the caller to the consumer.
-- NULL for rows written before this migration or with span export off.
ALTER TABLE webhook_outbox ADD COLUMN traceparent TEXT;
