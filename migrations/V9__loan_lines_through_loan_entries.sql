-- V9: a loan's lines are found through its `loan_entries`, not through an index of their own.
--
-- `journal_lines_loan` indexed every loan line by (tenant, loan, date): one more B-tree entry per
-- line, on a page chosen by the loan, so nearly one more page written per write on a busy ledger
-- (issue 13). `loan_entries` already lists every entry of a loan in posting order; it now also
-- says where in its entry the loan's lines are (`first_line`..`last_line`, the lines' sequence
-- numbers), so a loan's lines are a primary-key range of each of its entries even in an accrual
-- batch over thousands of loans. The as-of balance and the reconciliation replay read lines that
-- way; the reconciliation also counts every loan line of a tenant and fails if any is not inside
-- its loan's range.
--
-- loan_entries is rebuilt (SQLite cannot add a NOT NULL column without a default); its rows are
-- copied with the range of their lines, computed in one pass over the lines. A row whose entry
-- has no line for its loan would get no range: the NOT NULL stops the migration loudly.

CREATE TABLE loan_entry_lines_v9 (
    entry_seq  INTEGER NOT NULL,
    loan_id    TEXT NOT NULL,
    first_line INTEGER NOT NULL,
    last_line  INTEGER NOT NULL,
    PRIMARY KEY (entry_seq, loan_id)
) WITHOUT ROWID;
INSERT INTO loan_entry_lines_v9 (entry_seq, loan_id, first_line, last_line)
    SELECT e.entry_seq, l.loan_id, min(l.sequence), max(l.sequence)
      FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
     WHERE l.loan_id IS NOT NULL
     GROUP BY e.entry_seq, l.loan_id;

CREATE TABLE loan_entries_v9 (
    tenant_id    TEXT NOT NULL,
    loan_id      TEXT NOT NULL,
    entry_seq    INTEGER NOT NULL REFERENCES journal_entries (entry_seq),
    event_type   TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    first_line   INTEGER NOT NULL CHECK (typeof(first_line) = 'integer' AND first_line >= 1),
    last_line    INTEGER NOT NULL CHECK (typeof(last_line) = 'integer' AND last_line >= first_line),
    PRIMARY KEY (tenant_id, loan_id, entry_seq)
) WITHOUT ROWID;
INSERT INTO loan_entries_v9 (tenant_id, loan_id, entry_seq, event_type, effective_at, first_line, last_line)
    SELECT le.tenant_id, le.loan_id, le.entry_seq, le.event_type, le.effective_at, r.first_line, r.last_line
      FROM loan_entries le
      LEFT JOIN loan_entry_lines_v9 r ON r.entry_seq = le.entry_seq AND r.loan_id = le.loan_id;
DROP TABLE loan_entry_lines_v9;
-- Dropping the table drops its append-only triggers; both are recreated below.
DROP TABLE loan_entries;
ALTER TABLE loan_entries_v9 RENAME TO loan_entries;
CREATE TRIGGER loan_entries_no_update BEFORE UPDATE ON loan_entries
BEGIN SELECT RAISE(ABORT, 'loan_entries is append-only'); END;
CREATE TRIGGER loan_entries_no_delete BEFORE DELETE ON loan_entries
BEGIN SELECT RAISE(ABORT, 'loan_entries is append-only'); END;

DROP INDEX journal_lines_loan;
