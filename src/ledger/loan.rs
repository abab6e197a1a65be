//! A loan's sub-ledger balances and how a journal line moves them. The same function is used
//! when posting, when reversing (to refuse a reversal that would drive a balance negative) and by
//! the reconciliation replay, so the three can never disagree. Every balance, and the loan's
//! total exposure, stays an exact `i64`: a line that would push one out of range is refused.
//! Also here: the dating rule, no entry on a loan before the disbursement that opened it.

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::ids::LoanId;
use crate::ledger::journal::JournalLine;
use crate::ledger::money::Money;
use time::Date;

/// Refuses an entry on `loan_id` dated before `opened_on`, the effective date of the loan's
/// first disbursement (SPEC §6: so an as-of balance is never negative). A loan recorded before
/// opening dates were kept (`None`) is not restricted.
pub fn check_not_before_opening(
    loan_id: LoanId,
    opened_on: Option<Date>,
    date: Date,
) -> Result<(), LedgerError> {
    match opened_on {
        Some(opened) if date < opened => Err(LedgerError::EffectiveBeforeLoan(loan_id)),
        _ => Ok(()),
    }
}

/// What a loan owes and has moved, in minor units of its one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoanBalances {
    /// 1100 principal receivable.
    pub principal: Money,
    /// 1200 interest receivable.
    pub interest: Money,
    /// 1300 fees receivable.
    pub fees: Money,
    /// 2100 borrower suspense (money held for the borrower).
    pub suspense: Money,
    /// Net amount disbursed (2000 credits less debits).
    pub disbursed_total: Money,
    /// Net amount paid in (1000 debits less credits).
    pub paid_total: Money,
}

impl LoanBalances {
    /// From `[principal, interest, fees, suspense, disbursed_total, paid_total]` minor units,
    /// the order the `loans` table stores them in.
    pub const fn from_minor_parts(m: [i64; 6]) -> Self {
        LoanBalances {
            principal: Money::from_minor(m[0]),
            interest: Money::from_minor(m[1]),
            fees: Money::from_minor(m[2]),
            suspense: Money::from_minor(m[3]),
            disbursed_total: Money::from_minor(m[4]),
            paid_total: Money::from_minor(m[5]),
        }
    }

    /// `[principal, interest, fees, suspense, disbursed_total, paid_total]` in minor units.
    pub const fn minor_parts(&self) -> [i64; 6] {
        [
            self.principal.minor(),
            self.interest.minor(),
            self.fees.minor(),
            self.suspense.minor(),
            self.disbursed_total.minor(),
            self.paid_total.minor(),
        ]
    }

    /// principal + interest + fees.
    pub fn total_exposure(&self) -> Result<Money, LedgerError> {
        self.principal
            .checked_add(self.interest)?
            .checked_add(self.fees)
    }

    /// Applies one line; refuses (and leaves `self` untouched) if any balance would go negative.
    pub fn apply(&mut self, loan_id: LoanId, line: &JournalLine) -> Result<(), LedgerError> {
        let mut next = *self;
        let (slot, increases_on) = match line.account {
            Account::PrincipalReceivable => (&mut next.principal, Direction::Dr),
            Account::InterestReceivable => (&mut next.interest, Direction::Dr),
            Account::FeesReceivable => (&mut next.fees, Direction::Dr),
            Account::BorrowerSuspense => (&mut next.suspense, Direction::Cr),
            Account::DisbursementClearing => (&mut next.disbursed_total, Direction::Cr),
            Account::Cash => (&mut next.paid_total, Direction::Dr),
            Account::InterestIncome | Account::FeeIncome => return Ok(()),
        };
        *slot = if line.direction == increases_on {
            slot.checked_add(line.amount)?
        } else {
            slot.checked_sub(line.amount)?
        };
        if slot.is_negative() {
            return Err(LedgerError::NegativeBalance(loan_id));
        }
        // principal + interest + fees is shown as one exact figure, so it must fit too.
        next.total_exposure()?;
        *self = next;
        Ok(())
    }
}
