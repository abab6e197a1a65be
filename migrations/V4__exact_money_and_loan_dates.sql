-- V4: exact money as the database's own guard, and the date each loan opened.
--
-- Every money column is an INTEGER, checked with typeof(): SQLite turns an integer that
-- overflows in SQL arithmetic into a REAL, so a plain INTEGER affinity is no guard. The writer
-- never computes a total in SQL (it writes values it computed with checked i64 arithmetic); these
-- CHECKs make a REAL impossible to store even so. account_balances and accrual_lines get their
-- CHECKs by being rebuilt (SQLite cannot add a CHECK to an existing table); their rows are copied
-- unchanged, so a database that already holds a REAL total stops the migration loudly instead of
-- carrying it on.

CREATE TABLE account_balances_v4 (
    tenant_id    TEXT NOT NULL,
    account_code TEXT NOT NULL,
    currency     TEXT NOT NULL,
    layer        TEXT NOT NULL,
    dr_minor     INTEGER NOT NULL DEFAULT 0 CHECK (typeof(dr_minor) = 'integer' AND dr_minor >= 0),
    cr_minor     INTEGER NOT NULL DEFAULT 0 CHECK (typeof(cr_minor) = 'integer' AND cr_minor >= 0),
    PRIMARY KEY (tenant_id, account_code, currency, layer)
) WITHOUT ROWID;
INSERT INTO account_balances_v4 (tenant_id, account_code, currency, layer, dr_minor, cr_minor)
    SELECT tenant_id, account_code, currency, layer, dr_minor, cr_minor FROM account_balances;
DROP TABLE account_balances;
ALTER TABLE account_balances_v4 RENAME TO account_balances;

CREATE TABLE accrual_lines_v4 (
    entry_id                    TEXT NOT NULL REFERENCES journal_entries (entry_id),
    loan_id                     TEXT NOT NULL,
    tenant_id                   TEXT NOT NULL,
    program_id                  TEXT NOT NULL,
    accrual_date                TEXT NOT NULL,
    day_count_convention        TEXT NOT NULL CHECK (day_count_convention IN ('ACT_365', 'ACT_360', '30_360')),
    outstanding_principal_minor INTEGER NOT NULL
        CHECK (typeof(outstanding_principal_minor) = 'integer' AND outstanding_principal_minor >= 0),
    annual_rate_bps             INTEGER CHECK (annual_rate_bps IS NULL OR typeof(annual_rate_bps) = 'integer'),
    interest_minor              INTEGER NOT NULL CHECK (typeof(interest_minor) = 'integer' AND interest_minor > 0),
    PRIMARY KEY (entry_id, loan_id)
) WITHOUT ROWID;
INSERT INTO accrual_lines_v4 SELECT entry_id, loan_id, tenant_id, program_id, accrual_date, day_count_convention,
    outstanding_principal_minor, annual_rate_bps, interest_minor FROM accrual_lines;
-- Dropping the table drops its append-only triggers and index; both are recreated below.
DROP TABLE accrual_lines;
ALTER TABLE accrual_lines_v4 RENAME TO accrual_lines;
CREATE INDEX accrual_lines_loan_date ON accrual_lines (tenant_id, loan_id, accrual_date);
CREATE TRIGGER accrual_lines_no_update BEFORE UPDATE ON accrual_lines
BEGIN SELECT RAISE(ABORT, 'accrual_lines is append-only'); END;
CREATE TRIGGER accrual_lines_no_delete BEFORE DELETE ON accrual_lines
BEGIN SELECT RAISE(ABORT, 'accrual_lines is append-only'); END;

-- The effective date of the disbursement that opened the loan: no entry on the loan may be
-- dated before it (SPEC §6, 422 effective_before_loan), so an as-of balance is never negative.
-- Existing loans take the date of their first disbursement in posting order.
ALTER TABLE loans ADD COLUMN opened_on TEXT
    CHECK (opened_on IS NULL OR opened_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]');
UPDATE loans SET opened_on = (
    SELECT e.effective_at FROM loan_entries le JOIN journal_entries e ON e.entry_seq = le.entry_seq
     WHERE le.tenant_id = loans.tenant_id AND le.loan_id = loans.loan_id AND le.event_type = 'disbursement'
     ORDER BY le.entry_seq LIMIT 1);
