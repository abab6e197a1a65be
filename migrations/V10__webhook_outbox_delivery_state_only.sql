-- V10: a webhook outbox row keeps only its delivery state.
--
-- Every posted entry still gets its outbox row in the entry's own transaction (SPEC §7b), but the
-- row no longer repeats what the entry already holds: the webhook body
-- (`journal_entry_id`, `tenant_id`, `event_type`, `occurred_at` = the entry's `posted_at`,
-- `correlation_id`) and the `webhook-id` (`msg_` + the entry id) are read from the entry when it
-- is delivered. The row's key is the entry's `entry_seq` (so `outbox_seq` order is posting
-- order, as before), which makes the row about 40 bytes with one index entry (the pending due
-- index) instead of about 550 bytes with four: the text payload and its json_valid CHECK, and
-- the unique `webhook_id` and `journal_entry_id` and the `occurred_at` indexes are gone. A
-- replay since a time (`hpts webhooks replay --since`) finds its entries by `posted_at`.
--
-- Rows are copied with their state; the body they stored is the one the entry yields.
CREATE TABLE webhook_outbox_v10 (
    outbox_seq      INTEGER PRIMARY KEY REFERENCES journal_entries (entry_seq),
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_ms INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT,
    finished_ms     INTEGER CHECK (finished_ms IS NULL OR typeof(finished_ms) = 'integer'),
    traceparent     TEXT
);
INSERT INTO webhook_outbox_v10 (outbox_seq, status, attempts, next_attempt_ms, created_ms, last_error,
                                delivered_at, finished_ms, traceparent)
    SELECT e.entry_seq, o.status, o.attempts, o.next_attempt_ms, o.created_ms, o.last_error,
           o.delivered_at, o.finished_ms, o.traceparent
      FROM webhook_outbox o JOIN journal_entries e ON e.entry_id = o.journal_entry_id
     ORDER BY e.entry_seq;
DROP TABLE webhook_outbox;
ALTER TABLE webhook_outbox_v10 RENAME TO webhook_outbox;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhook_outbox_finished ON webhook_outbox (finished_ms) WHERE finished_ms IS NOT NULL;
