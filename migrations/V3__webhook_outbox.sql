-- V3: transactional outbox for journalEntryPosted webhooks. The writer inserts one row per
-- posted journal entry in the SAME transaction as the entry; a delivery worker (outside the
-- writer) sends it at least once and records the outcome through the writer.
CREATE TABLE webhook_outbox (
    outbox_seq        INTEGER PRIMARY KEY,
    webhook_id        TEXT NOT NULL UNIQUE,
    tenant_id         TEXT NOT NULL,
    journal_entry_id  TEXT NOT NULL UNIQUE REFERENCES journal_entries (entry_id),
    occurred_at       TEXT NOT NULL,
    payload           TEXT NOT NULL CHECK (json_valid(payload)),
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_ms   INTEGER NOT NULL,
    created_ms        INTEGER NOT NULL,
    last_error        TEXT,
    delivered_at      TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhook_outbox_occurred ON webhook_outbox (occurred_at);
