-- V6: month-end (SPEC §6d). A period close freezes every day up to and including its
-- through_date for its tenant (the lock date is the latest through_date) and keeps the trial
-- balance of every currency as of that day, which reconciliation recomputes
-- (`closed_periods_unchanged`). Closes are append-only, like the journal.
CREATE TABLE period_closes (
    period_close_id TEXT PRIMARY KEY CHECK (length(period_close_id) = 36),
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    through_date    TEXT NOT NULL CHECK (through_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    closed_at       TEXT NOT NULL,
    actor           TEXT,
    metadata        TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    trial_balance   TEXT NOT NULL CHECK (json_valid(trial_balance))
) WITHOUT ROWID;
CREATE UNIQUE INDEX period_closes_tenant_date ON period_closes (tenant_id, through_date);

CREATE TRIGGER period_closes_no_update BEFORE UPDATE ON period_closes
BEGIN SELECT RAISE(ABORT, 'period_closes is append-only'); END;
CREATE TRIGGER period_closes_no_delete BEFORE DELETE ON period_closes
BEGIN SELECT RAISE(ABORT, 'period_closes is append-only'); END;
