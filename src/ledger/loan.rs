//! A loan's sub-ledger balances and how a journal line moves them: [`effects`] is the one
//! projection from lines to loan balances. The writer moves a loan with
//! [`LoanBalances::apply`] (checked, and refusing a negative balance, so a reversal that would
//! drive one negative is blocked); the as-of read and the reconciliation replay sum stored
//! lines with [`Replay`]; both go through [`effects`], so the three can never disagree. Every
//! balance, and the loan's total exposure, stays an exact `i64`: a line that would push one out
//! of range is refused. Also here: the dating rule, no entry on a loan before the disbursement
//! that opened it, and the loan's status.

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::commands::EventType;
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

/// One figure of a loan's balances (the order of [`LoanBalances::minor_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 1100 principal receivable.
    Principal = 0,
    /// 1200 interest receivable.
    Interest = 1,
    /// 1300 fees receivable.
    Fees = 2,
    /// 2100 borrower suspense.
    Suspense = 3,
    /// Net disbursed (2000 credits less debits).
    DisbursedTotal = 4,
    /// Net paid in (1000 debits less credits).
    PaidTotal = 5,
    /// Principal, interest and fees written off by a charge-off (and not reversed).
    ChargedOff = 6,
    /// Recovered after a charge-off (4200 credits less debits).
    Recovered = 7,
}

/// How many figures a loan has.
pub const FIELDS: usize = 8;

/// How a journal line moves a loan: up to two `(figure, +1 | -1)`. `kind` is the event type of
/// the entry, or for a reversal the type of the entry it reverses (a reversal's lines are the
/// mirror of those, so they move the same figures the other way). A settlement's lines carry
/// the loan (so it lists under the loan) but move cash and clearing only, none of its figures;
/// a charge-off's credits to 1100/1200/1300 also count as written off.
pub fn effects(
    account: Account,
    direction: Direction,
    kind: EventType,
) -> [Option<(Field, i8)>; 2] {
    if kind == EventType::DisbursementSettled {
        return [None, None];
    }
    let (field, increases_on) = match account {
        Account::PrincipalReceivable => (Field::Principal, Direction::Dr),
        Account::InterestReceivable => (Field::Interest, Direction::Dr),
        Account::FeesReceivable => (Field::Fees, Direction::Dr),
        Account::BorrowerSuspense => (Field::Suspense, Direction::Cr),
        Account::DisbursementClearing => (Field::DisbursedTotal, Direction::Cr),
        Account::Cash => (Field::PaidTotal, Direction::Dr),
        Account::Recoveries => (Field::Recovered, Direction::Cr),
        Account::InterestIncome | Account::FeeIncome | Account::CreditLosses => {
            return [None, None];
        }
    };
    let sign = if direction == increases_on { 1 } else { -1 };
    let written_off = (kind == EventType::Chargeoff
        && matches!(
            account,
            Account::PrincipalReceivable | Account::InterestReceivable | Account::FeesReceivable
        ))
    .then_some((Field::ChargedOff, -sign));
    [Some((field, sign)), written_off]
}

/// A loan's figures replayed from stored lines (the as-of read, the reconciliation replay):
/// every line through [`effects`], summed in `i128` so that no stored amount, however damaged,
/// can overflow the sum; [`Replay::balances`] then insists that each figure fits in `i64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replay {
    sums: [i128; FIELDS],
}

impl Replay {
    /// Adds one line of an entry about `kind` (see [`effects`]); returns how much it moved the
    /// principal, if it moved it (for the portfolio roll-up).
    pub fn add(
        &mut self,
        account: Account,
        direction: Direction,
        kind: EventType,
        amount: i64,
    ) -> Option<i128> {
        let mut principal = None;
        for (field, sign) in effects(account, direction, kind).into_iter().flatten() {
            let signed = i128::from(amount) * i128::from(sign);
            self.sums[field as usize] += signed;
            if field == Field::Principal {
                principal = Some(signed);
            }
        }
        principal
    }

    /// The sums in [`Field`] order.
    pub const fn sums(&self) -> [i128; FIELDS] {
        self.sums
    }

    /// The figures as balances, or the first sum that does not fit in `i64`.
    pub fn balances(&self) -> Result<LoanBalances, i128> {
        let mut parts = [0i64; FIELDS];
        for (part, sum) in parts.iter_mut().zip(self.sums) {
            *part = i64::try_from(sum).map_err(|_| sum)?;
        }
        Ok(LoanBalances::from_minor_parts(parts))
    }
}

wire_enum!(
    /// A loan's status (SPEC §7).
    LoanStatus {
        /// Something is owed (or nothing was disbursed yet).
        Active => "active",
        /// Everything disbursed is repaid.
        PaidOff => "paid_off",
        /// Written off.
        ChargedOff => "charged_off",
    }
);

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
    /// Written off by a charge-off that stands.
    pub charged_off: Money,
    /// Recovered on the charged-off loan (4200).
    pub recovered: Money,
}

impl LoanBalances {
    /// From minor units in [`Field`] order, the order the `loans` table stores them in.
    pub const fn from_minor_parts(m: [i64; FIELDS]) -> Self {
        LoanBalances {
            principal: Money::from_minor(m[0]),
            interest: Money::from_minor(m[1]),
            fees: Money::from_minor(m[2]),
            suspense: Money::from_minor(m[3]),
            disbursed_total: Money::from_minor(m[4]),
            paid_total: Money::from_minor(m[5]),
            charged_off: Money::from_minor(m[6]),
            recovered: Money::from_minor(m[7]),
        }
    }

    /// Minor units in [`Field`] order.
    pub const fn minor_parts(&self) -> [i64; FIELDS] {
        [
            self.principal.minor(),
            self.interest.minor(),
            self.fees.minor(),
            self.suspense.minor(),
            self.disbursed_total.minor(),
            self.paid_total.minor(),
            self.charged_off.minor(),
            self.recovered.minor(),
        ]
    }

    /// The loan's status: charged off while a charge-off stands, paid off once something was
    /// disbursed and nothing is owed, active otherwise.
    pub fn status(&self) -> LoanStatus {
        if self.charged_off.is_positive() {
            LoanStatus::ChargedOff
        } else if self.principal == Money::ZERO
            && self.interest == Money::ZERO
            && self.fees == Money::ZERO
            && self.disbursed_total.is_positive()
        {
            LoanStatus::PaidOff
        } else {
            LoanStatus::Active
        }
    }

    /// principal + interest + fees.
    pub fn total_exposure(&self) -> Result<Money, LedgerError> {
        self.principal
            .checked_add(self.interest)?
            .checked_add(self.fees)
    }

    /// Applies one line of an entry about `kind` (see [`effects`]); refuses (and leaves `self`
    /// untouched) if any figure would go negative or out of range.
    pub fn apply(
        &mut self,
        loan_id: LoanId,
        line: &JournalLine,
        kind: EventType,
    ) -> Result<(), LedgerError> {
        let mut parts = self.minor_parts();
        for (field, sign) in effects(line.account, line.direction, kind)
            .into_iter()
            .flatten()
        {
            let slot = &mut parts[field as usize];
            let moved = if sign > 0 {
                slot.checked_add(line.amount.minor())
            } else {
                slot.checked_sub(line.amount.minor())
            };
            *slot = moved.ok_or(LedgerError::Overflow)?;
            if *slot < 0 {
                return Err(LedgerError::NegativeBalance(loan_id));
            }
        }
        let next = LoanBalances::from_minor_parts(parts);
        // principal + interest + fees is shown as one exact figure, so it must fit too.
        next.total_exposure()?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_sums_lines_through_the_projection_and_refuses_a_figure_past_i64() {
        let mut replay = Replay::default();
        let disbursed = |r: &mut Replay, account, direction, amount| {
            r.add(account, direction, EventType::Disbursement, amount)
        };
        assert_eq!(
            disbursed(
                &mut replay,
                Account::PrincipalReceivable,
                Direction::Dr,
                1_000
            ),
            Some(1_000)
        );
        assert_eq!(
            disbursed(
                &mut replay,
                Account::DisbursementClearing,
                Direction::Cr,
                1_000
            ),
            None
        );
        let b = replay.balances().expect("fits");
        assert_eq!(
            (b.principal, b.disbursed_total),
            (Money::from_minor(1_000), Money::from_minor(1_000))
        );
        disbursed(
            &mut replay,
            Account::PrincipalReceivable,
            Direction::Dr,
            i64::MAX,
        );
        assert_eq!(replay.balances(), Err(i128::from(i64::MAX) + 1_000));
    }
}
