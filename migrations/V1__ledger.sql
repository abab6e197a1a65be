-- V1: the lending ledger schema.
--
-- Money is INTEGER minor units (never REAL). Ids are lowercase UUID text. Dates are
-- 'YYYY-MM-DD', timestamps RFC 3339 UTC text. Every row carries tenant_id.
-- Journal tables are append-only: triggers at the end abort any UPDATE or DELETE.
-- Migrations are append-only too: never edit this file once released; add V2, V3, ...

-- Chart of accounts template (SPEC §8), copied into `accounts` per tenant on first use.
CREATE TABLE account_templates (
    code        TEXT PRIMARY KEY CHECK (code GLOB '[0-9][0-9][0-9][0-9]'),
    name        TEXT NOT NULL,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('DR', 'CR'))
) WITHOUT ROWID;

INSERT INTO account_templates (code, name, normal_side) VALUES
    ('1000', 'Cash – operating', 'DR'),
    ('1100', 'Principal receivable', 'DR'),
    ('1200', 'Interest receivable', 'DR'),
    ('1300', 'Fees receivable', 'DR'),
    ('2000', 'Disbursement clearing', 'CR'),
    ('2100', 'Borrower suspense (unapplied funds)', 'CR'),
    ('4000', 'Interest income', 'CR'),
    ('4100', 'Fee income', 'CR');

CREATE TABLE tenants (
    tenant_id  TEXT PRIMARY KEY CHECK (length(tenant_id) = 36),
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    code        TEXT NOT NULL CHECK (code GLOB '[0-9][0-9][0-9][0-9]'),
    name        TEXT NOT NULL,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('DR', 'CR')),
    PRIMARY KEY (tenant_id, code)
) WITHOUT ROWID;

-- Loans and their materialised sub-ledger balances, maintained by the writer in the same
-- transaction as the journal lines (reconciliation replays the lines to prove they agree).
CREATE TABLE loans (
    tenant_id             TEXT NOT NULL REFERENCES tenants (tenant_id),
    loan_id               TEXT NOT NULL CHECK (length(loan_id) = 36),
    borrower_id           TEXT NOT NULL CHECK (length(borrower_id) = 36),
    currency              TEXT NOT NULL CHECK (length(currency) = 3 AND currency = upper(currency)),
    opened_at             TEXT NOT NULL,
    principal_minor       INTEGER NOT NULL DEFAULT 0 CHECK (typeof(principal_minor) = 'integer' AND principal_minor >= 0),
    interest_minor        INTEGER NOT NULL DEFAULT 0 CHECK (typeof(interest_minor) = 'integer' AND interest_minor >= 0),
    fees_minor            INTEGER NOT NULL DEFAULT 0 CHECK (typeof(fees_minor) = 'integer' AND fees_minor >= 0),
    suspense_minor        INTEGER NOT NULL DEFAULT 0 CHECK (typeof(suspense_minor) = 'integer' AND suspense_minor >= 0),
    disbursed_total_minor INTEGER NOT NULL DEFAULT 0 CHECK (typeof(disbursed_total_minor) = 'integer' AND disbursed_total_minor >= 0),
    paid_total_minor      INTEGER NOT NULL DEFAULT 0 CHECK (typeof(paid_total_minor) = 'integer' AND paid_total_minor >= 0),
    last_activity_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, loan_id)
) WITHOUT ROWID;

-- Business events: what the client asked for (canonical request body), one per journal entry.
CREATE TABLE events (
    event_id          TEXT PRIMARY KEY CHECK (length(event_id) = 36),
    tenant_id         TEXT NOT NULL REFERENCES tenants (tenant_id),
    event_type        TEXT NOT NULL CHECK (event_type IN (
                          'disbursement', 'payment_received', 'fee_assessed', 'accrual', 'reversal',
                          'disbursement_settled', 'payment_allocated', 'payment_returned',
                          'fee_waived', 'chargeoff', 'recovery', 'refinance', 'restructure',
                          'manual_adjustment')),
    loan_id           TEXT,
    payload           TEXT NOT NULL CHECK (json_valid(payload)),
    metadata          TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    external_ref      TEXT,
    allocation_policy TEXT,
    recorded_at       TEXT NOT NULL
);
-- external_ref is unique per tenant (payments); a second use is 409 duplicate_external_ref.
CREATE UNIQUE INDEX events_external_ref ON events (tenant_id, external_ref) WHERE external_ref IS NOT NULL;

-- Journal entry headers. entry_seq is the posting order (keyset pagination); hash chains each
-- tenant's entries (SHA-256 over canonical content and the previous entry's hash).
CREATE TABLE journal_entries (
    entry_seq         INTEGER PRIMARY KEY,
    entry_id          TEXT NOT NULL UNIQUE CHECK (length(entry_id) = 36),
    tenant_id         TEXT NOT NULL REFERENCES tenants (tenant_id),
    event_id          TEXT NOT NULL REFERENCES events (event_id),
    event_type        TEXT NOT NULL,
    effective_at      TEXT NOT NULL CHECK (effective_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    posted_at         TEXT NOT NULL,
    correlation_id    TEXT NOT NULL,
    reverses_entry_id TEXT REFERENCES journal_entries (entry_id),
    description       TEXT NOT NULL,
    actor             TEXT,
    metadata          TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    line_count        INTEGER NOT NULL CHECK (line_count >= 2),
    prev_hash         TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash              TEXT NOT NULL CHECK (length(hash) = 64)
);
CREATE INDEX journal_entries_tenant ON journal_entries (tenant_id, entry_seq);
-- An entry is reversed at most once.
CREATE UNIQUE INDEX journal_entries_reversal_once ON journal_entries (reverses_entry_id)
    WHERE reverses_entry_id IS NOT NULL;

-- Journal lines. They are inserted before their header (the foreign key is deferred) so the
-- header's trigger can prove the finished entry balances.
CREATE TABLE journal_lines (
    entry_id     TEXT NOT NULL REFERENCES journal_entries (entry_id) DEFERRABLE INITIALLY DEFERRED,
    sequence     INTEGER NOT NULL CHECK (sequence >= 1),
    tenant_id    TEXT NOT NULL,
    account_code TEXT NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('DR', 'CR')),
    amount_minor INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    layer        TEXT NOT NULL CHECK (layer IN ('SETTLED', 'PENDING', 'ENCUMBRANCE')),
    effective_at TEXT NOT NULL,
    loan_id      TEXT,
    borrower_id  TEXT,
    external_ref TEXT,
    PRIMARY KEY (entry_id, sequence),
    FOREIGN KEY (tenant_id, account_code) REFERENCES accounts (tenant_id, code)
) WITHOUT ROWID;
CREATE INDEX journal_lines_loan ON journal_lines (tenant_id, loan_id, effective_at) WHERE loan_id IS NOT NULL;
CREATE INDEX journal_lines_account ON journal_lines (tenant_id, account_code, currency, layer, effective_at);

-- Which entries touch which loan, in posting order (loan journal pagination).
CREATE TABLE loan_entries (
    tenant_id    TEXT NOT NULL,
    loan_id      TEXT NOT NULL,
    entry_seq    INTEGER NOT NULL REFERENCES journal_entries (entry_seq),
    event_type   TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, loan_id, entry_seq)
) WITHOUT ROWID;

-- The inputs of every accrual line, so an accrual can be explained later.
CREATE TABLE accrual_lines (
    entry_id                    TEXT NOT NULL REFERENCES journal_entries (entry_id),
    loan_id                     TEXT NOT NULL,
    tenant_id                   TEXT NOT NULL,
    program_id                  TEXT NOT NULL,
    accrual_date                TEXT NOT NULL,
    day_count_convention        TEXT NOT NULL CHECK (day_count_convention IN ('ACT_365', 'ACT_360', '30_360')),
    outstanding_principal_minor INTEGER NOT NULL CHECK (outstanding_principal_minor >= 0),
    annual_rate_bps             INTEGER,
    interest_minor              INTEGER NOT NULL CHECK (interest_minor > 0),
    PRIMARY KEY (entry_id, loan_id)
) WITHOUT ROWID;
CREATE INDEX accrual_lines_loan_date ON accrual_lines (tenant_id, loan_id, accrual_date);

-- Materialised GL balances per account, currency and layer (O(1) "now" reads).
CREATE TABLE account_balances (
    tenant_id    TEXT NOT NULL,
    account_code TEXT NOT NULL,
    currency     TEXT NOT NULL,
    layer        TEXT NOT NULL,
    dr_minor     INTEGER NOT NULL DEFAULT 0 CHECK (dr_minor >= 0),
    cr_minor     INTEGER NOT NULL DEFAULT 0 CHECK (cr_minor >= 0),
    PRIMARY KEY (tenant_id, account_code, currency, layer)
) WITHOUT ROWID;

-- Idempotency records: the stored first answer, written in the same transaction as the entry.
CREATE TABLE idempotency_keys (
    tenant_id       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    route           TEXT NOT NULL,
    fingerprint     TEXT NOT NULL CHECK (length(fingerprint) = 64),
    status_code     INTEGER NOT NULL,
    response_body   BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Double entry, enforced by the database as a second guard: when the header is inserted, its
-- lines must already be there, at least two, all of its tenant, balanced per currency.
CREATE TRIGGER journal_entries_must_balance BEFORE INSERT ON journal_entries
BEGIN
    SELECT RAISE(ABORT, 'unbalanced journal entry: line count')
     WHERE (SELECT count(*) FROM journal_lines WHERE entry_id = NEW.entry_id) != NEW.line_count;
    SELECT RAISE(ABORT, 'unbalanced journal entry: debits differ from credits')
     WHERE EXISTS (SELECT 1 FROM journal_lines WHERE entry_id = NEW.entry_id
                   GROUP BY currency
                   HAVING sum(CASE direction WHEN 'DR' THEN amount_minor ELSE 0 END)
                       != sum(CASE direction WHEN 'CR' THEN amount_minor ELSE 0 END));
    SELECT RAISE(ABORT, 'journal lines belong to another tenant')
     WHERE EXISTS (SELECT 1 FROM journal_lines WHERE entry_id = NEW.entry_id AND tenant_id != NEW.tenant_id);
END;

-- Lines cannot be added to an entry whose header already exists.
CREATE TRIGGER journal_lines_closed_entry BEFORE INSERT ON journal_lines
WHEN EXISTS (SELECT 1 FROM journal_entries WHERE entry_id = NEW.entry_id)
BEGIN
    SELECT RAISE(ABORT, 'journal entry is already posted');
END;

-- Append-only guards: corrections are new entries (reversals), never edits.
CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries is append-only'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries is append-only'); END;
CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;
CREATE TRIGGER journal_lines_no_delete BEFORE DELETE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
CREATE TRIGGER loan_entries_no_update BEFORE UPDATE ON loan_entries
BEGIN SELECT RAISE(ABORT, 'loan_entries is append-only'); END;
CREATE TRIGGER loan_entries_no_delete BEFORE DELETE ON loan_entries
BEGIN SELECT RAISE(ABORT, 'loan_entries is append-only'); END;
CREATE TRIGGER accrual_lines_no_update BEFORE UPDATE ON accrual_lines
BEGIN SELECT RAISE(ABORT, 'accrual_lines is append-only'); END;
CREATE TRIGGER accrual_lines_no_delete BEFORE DELETE ON accrual_lines
BEGIN SELECT RAISE(ABORT, 'accrual_lines is append-only'); END;
