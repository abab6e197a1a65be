-- V11: the balance guard reads an entry's lines once.
--
-- `journal_entries_must_balance` (V1) checked a new header with three scans of its lines: the
-- count, then debits against credits per currency with a GROUP BY (a sorter opened and closed
-- for every entry), then the tenant of every line. It was about a tenth of the writer's time
-- per disbursement (issue 13). The same three rules now come from one aggregate over the
-- entry's primary-key range of lines. The signed sum (debits minus credits) proves balance when
-- every line has one currency, the common case; an entry with lines in more than one currency
-- still gets the per-currency GROUP BY, and only then. The rules, the messages and the abort are
-- the ones V1 wrote: the order of the checks is the same (count, balance, tenant), so a header
-- that breaks several rules names the same one as before.
--
-- The signed sum cannot overflow where the two separate sums of V1 did not: every amount is
-- positive, so each partial sum lies between minus the credits and plus the debits.

DROP TRIGGER journal_entries_must_balance;
CREATE TRIGGER journal_entries_must_balance BEFORE INSERT ON journal_entries
BEGIN
    SELECT CASE
        WHEN count(*) != NEW.line_count
            THEN RAISE(ABORT, 'unbalanced journal entry: line count')
        WHEN min(currency) = max(currency)
         AND sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END) != 0
            THEN RAISE(ABORT, 'unbalanced journal entry: debits differ from credits')
        WHEN min(currency) != max(currency) AND EXISTS (
                SELECT 1 FROM journal_lines WHERE entry_id = NEW.entry_id
                 GROUP BY currency
                HAVING sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END) != 0)
            THEN RAISE(ABORT, 'unbalanced journal entry: debits differ from credits')
        WHEN sum(tenant_id != NEW.tenant_id) > 0
            THEN RAISE(ABORT, 'journal lines belong to another tenant')
    END
      FROM journal_lines WHERE entry_id = NEW.entry_id;
END;
