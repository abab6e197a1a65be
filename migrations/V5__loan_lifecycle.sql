-- V5: the loan lifecycle (SPEC §6c).
--
-- * Chart accounts 4200 Recoveries and 5000 Credit losses, for new tenants (the template) and
--   for every existing one.
-- * Two loan figures the writer keeps materialised like the others: what a charge-off wrote off
--   and what was recovered since (replayed from the lines by reconciliation).
-- * The event a settlement, return or waiver acts on (`subject_event_id`, indexed), and each
--   event's journal entry (`entry_seq`, the entry's primary key), so the writer finds an event's
--   entry and what stands on it with primary-key and indexed reads. Existing events are
--   backfilled through a temporary index (the append-only guard is lifted for that one
--   statement and put back as it was).

INSERT INTO account_templates (code, name, normal_side) VALUES
    ('4200', 'Recoveries', 'CR'),
    ('5000', 'Credit losses', 'DR');

INSERT INTO accounts (tenant_id, code, name, normal_side)
SELECT t.tenant_id, a.code, a.name, a.normal_side
  FROM tenants t CROSS JOIN account_templates a
 WHERE a.code IN ('4200', '5000')
   AND NOT EXISTS (SELECT 1 FROM accounts x WHERE x.tenant_id = t.tenant_id AND x.code = a.code);

ALTER TABLE loans ADD COLUMN charged_off_minor INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(charged_off_minor) = 'integer' AND charged_off_minor >= 0);
ALTER TABLE loans ADD COLUMN recovered_minor INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(recovered_minor) = 'integer' AND recovered_minor >= 0);

ALTER TABLE events ADD COLUMN subject_event_id TEXT;
CREATE INDEX events_subject ON events (tenant_id, subject_event_id) WHERE subject_event_id IS NOT NULL;

ALTER TABLE events ADD COLUMN entry_seq INTEGER;
CREATE INDEX journal_entries_event_v5 ON journal_entries (event_id);
DROP TRIGGER events_no_update;
UPDATE events SET entry_seq = (SELECT je.entry_seq FROM journal_entries je WHERE je.event_id = events.event_id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
DROP INDEX journal_entries_event_v5;
