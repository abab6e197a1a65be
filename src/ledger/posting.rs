//! Posting rules: each business event becomes exactly one balanced [`JournalEntry`].
//!
//! | event | lines |
//! |---|---|
//! | disbursement | Dr 1100 principal / Cr 2000 clearing |
//! | fee | Dr 1300 fees receivable / Cr 4100 fee income |
//! | payment | Dr 1000 cash; Cr 1300 / 1200 / 1100 / 2100 per non-zero allocation part |
//! | accrual | per loan Dr 1200 interest receivable / Cr 4000 interest income |
//! | reversal | the mirror of the original's lines |

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::allocation::Allocation;
use crate::ledger::commands::{Disbursement, Fee, Payment};
use crate::ledger::ids::{BorrowerId, LoanId};
use crate::ledger::journal::{JournalEntry, JournalLine};
use crate::ledger::money::{Currency, Money};

/// Dr 1100 / Cr 2000.
pub fn disbursement(d: &Disbursement) -> Result<JournalEntry, LedgerError> {
    if !d.amount.is_positive() {
        return Err(LedgerError::AmountMustBePositive);
    }
    let line = |account, direction| {
        JournalLine::loan_line(
            account,
            direction,
            d.amount,
            d.currency,
            d.loan_id,
            Some(d.borrower_id),
        )
    };
    JournalEntry::new(vec![
        line(Account::PrincipalReceivable, Direction::Dr),
        line(Account::DisbursementClearing, Direction::Cr),
    ])
}

/// Dr 1300 / Cr 4100.
pub fn fee(f: &Fee, borrower_id: BorrowerId) -> Result<JournalEntry, LedgerError> {
    if !f.amount.is_positive() {
        return Err(LedgerError::AmountMustBePositive);
    }
    let line = |account, direction| {
        JournalLine::loan_line(
            account,
            direction,
            f.amount,
            f.currency,
            f.loan_id,
            Some(borrower_id),
        )
    };
    JournalEntry::new(vec![
        line(Account::FeesReceivable, Direction::Dr),
        line(Account::FeeIncome, Direction::Cr),
    ])
}

/// Dr 1000 for the amount, one credit per non-zero allocation part.
pub fn payment(p: &Payment, allocation: &Allocation) -> Result<JournalEntry, LedgerError> {
    if !p.amount.is_positive() {
        return Err(LedgerError::AmountMustBePositive);
    }
    let line = |account, direction, amount| {
        let mut l = JournalLine::loan_line(
            account,
            direction,
            amount,
            p.currency,
            p.loan_id,
            Some(p.borrower_id),
        );
        l.external_ref.clone_from(&p.external_ref);
        l
    };
    let mut lines = vec![line(Account::Cash, Direction::Dr, p.amount)];
    for (account, part) in [
        (Account::FeesReceivable, allocation.fees),
        (Account::InterestReceivable, allocation.interest),
        (Account::PrincipalReceivable, allocation.principal),
        (Account::BorrowerSuspense, allocation.suspense),
    ] {
        if part.is_positive() {
            lines.push(line(account, Direction::Cr, part));
        }
    }
    JournalEntry::new(lines)
}

/// One accrued loan as the posting rule needs it.
#[derive(Debug, Clone, Copy)]
pub struct AccrualPosting {
    /// Loan accrued.
    pub loan_id: LoanId,
    /// Its borrower.
    pub borrower_id: BorrowerId,
    /// Positive interest.
    pub interest: Money,
}

/// Per loan Dr 1200 / Cr 4000, all in one entry.
pub fn accrual(currency: Currency, items: &[AccrualPosting]) -> Result<JournalEntry, LedgerError> {
    let mut lines = Vec::with_capacity(items.len() * 2);
    for item in items {
        if !item.interest.is_positive() {
            return Err(LedgerError::AmountMustBePositive);
        }
        for (account, direction) in [
            (Account::InterestReceivable, Direction::Dr),
            (Account::InterestIncome, Direction::Cr),
        ] {
            lines.push(JournalLine::loan_line(
                account,
                direction,
                item.interest,
                currency,
                item.loan_id,
                Some(item.borrower_id),
            ));
        }
    }
    JournalEntry::new(lines)
}
