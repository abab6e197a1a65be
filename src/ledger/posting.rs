//! Posting rules: each business event becomes exactly one balanced [`JournalEntry`].
//!
//! | event | lines |
//! |---|---|
//! | disbursement | Dr 1100 principal / Cr 2000 clearing |
//! | fee | Dr 1300 fees receivable / Cr 4100 fee income |
//! | payment | Dr 1000 cash; Cr 1300 / 1200 / 1100 / 2100 per non-zero allocation part |
//! | accrual | per loan Dr 1200 interest receivable / Cr 4000 interest income |
//! | reversal | the mirror of the original's lines |
//! | settlement | Dr 2000 clearing / Cr 1000 cash, the disbursement's amount |
//! | payment return | the mirror of the payment's lines; with a fee also Dr 1300 / Cr 4100 |
//! | fee waiver | Dr 4100 fee income / Cr 1300 fees receivable |
//! | charge-off | per non-zero balance Dr 5000 / Cr 1100, Dr 4000 / Cr 1200, Dr 4100 / Cr 1300 |
//! | recovery | Dr 1000 cash; Cr 4200 up to what is still unrecovered, the rest Cr 2100 |
//! | adjustment | the accountant's lines, on no loan |

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::allocation::Allocation;
use crate::ledger::commands::{AdjustmentLine, Disbursement, Fee, Payment};
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

/// A line of a payment (or recovery): on its loan, with its borrower and external reference.
fn payment_line(p: &Payment, account: Account, direction: Direction, amount: Money) -> JournalLine {
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
}

/// Dr 1000 for the amount, one credit per non-zero allocation part.
pub fn payment(p: &Payment, allocation: &Allocation) -> Result<JournalEntry, LedgerError> {
    if !p.amount.is_positive() {
        return Err(LedgerError::AmountMustBePositive);
    }
    let line = |account, direction, amount| payment_line(p, account, direction, amount);
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

/// Who a loan line is about: the loan, its borrower and its currency.
#[derive(Debug, Clone, Copy)]
pub struct LoanParty {
    /// The loan.
    pub loan_id: LoanId,
    /// Its borrower.
    pub borrower_id: BorrowerId,
    /// Its currency.
    pub currency: Currency,
}

impl LoanParty {
    fn line(self, account: Account, direction: Direction, amount: Money) -> JournalLine {
        JournalLine::loan_line(
            account,
            direction,
            amount,
            self.currency,
            self.loan_id,
            Some(self.borrower_id),
        )
    }

    /// A Dr/Cr pair for `amount` when it is non-zero.
    fn pair(self, lines: &mut Vec<JournalLine>, dr: Account, cr: Account, amount: Money) {
        if amount.is_positive() {
            lines.push(self.line(dr, Direction::Dr, amount));
            lines.push(self.line(cr, Direction::Cr, amount));
        }
    }
}

/// Dr 2000 / Cr 1000 for the disbursed amount.
pub fn settlement(party: LoanParty, amount: Money) -> Result<JournalEntry, LedgerError> {
    let mut lines = Vec::with_capacity(2);
    party.pair(
        &mut lines,
        Account::DisbursementClearing,
        Account::Cash,
        amount,
    );
    JournalEntry::new(lines)
}

/// The mirror of the payment's lines; with an NSF fee also Dr 1300 / Cr 4100.
pub fn payment_return(
    payment: &JournalEntry,
    party: LoanParty,
    nsf_fee: Money,
) -> Result<JournalEntry, LedgerError> {
    let mut lines = payment.mirrored().lines().to_vec();
    party.pair(
        &mut lines,
        Account::FeesReceivable,
        Account::FeeIncome,
        nsf_fee,
    );
    JournalEntry::new(lines)
}

/// Dr 4100 / Cr 1300.
pub fn fee_waiver(party: LoanParty, amount: Money) -> Result<JournalEntry, LedgerError> {
    let mut lines = Vec::with_capacity(2);
    party.pair(
        &mut lines,
        Account::FeeIncome,
        Account::FeesReceivable,
        amount,
    );
    JournalEntry::new(lines)
}

/// What a charge-off writes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenOff {
    /// From 1100 to 5000.
    pub principal: Money,
    /// From 1200 back against 4000.
    pub interest: Money,
    /// From 1300 back against 4100.
    pub fees: Money,
}

/// Per non-zero balance: Dr 5000 / Cr 1100, Dr 4000 / Cr 1200, Dr 4100 / Cr 1300.
pub fn charge_off(party: LoanParty, w: WrittenOff) -> Result<JournalEntry, LedgerError> {
    let mut lines = Vec::with_capacity(6);
    party.pair(
        &mut lines,
        Account::CreditLosses,
        Account::PrincipalReceivable,
        w.principal,
    );
    party.pair(
        &mut lines,
        Account::InterestIncome,
        Account::InterestReceivable,
        w.interest,
    );
    party.pair(
        &mut lines,
        Account::FeeIncome,
        Account::FeesReceivable,
        w.fees,
    );
    JournalEntry::new(lines)
}

/// Dr 1000 for the amount; Cr 4200 `recovered`, Cr 2100 `suspense` (each when non-zero).
pub fn recovery(
    p: &Payment,
    recovered: Money,
    suspense: Money,
) -> Result<JournalEntry, LedgerError> {
    if !p.amount.is_positive() {
        return Err(LedgerError::AmountMustBePositive);
    }
    let line = |account, direction, amount| payment_line(p, account, direction, amount);
    let mut lines = vec![line(Account::Cash, Direction::Dr, p.amount)];
    for (account, part) in [
        (Account::Recoveries, recovered),
        (Account::BorrowerSuspense, suspense),
    ] {
        if part.is_positive() {
            lines.push(line(account, Direction::Cr, part));
        }
    }
    JournalEntry::new(lines)
}

/// The accountant's lines as they are, on no loan.
pub fn adjustment(lines: &[(Account, &AdjustmentLine)]) -> Result<JournalEntry, LedgerError> {
    JournalEntry::new(
        lines
            .iter()
            .map(|(account, l)| JournalLine {
                account: *account,
                direction: l.direction,
                amount: l.amount,
                currency: l.currency,
                layer: crate::ledger::accounts::Layer::Settled,
                loan_id: None,
                borrower_id: None,
                external_ref: None,
            })
            .collect(),
    )
}
