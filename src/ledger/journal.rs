//! Journal entries. [`JournalEntry::new`] is the only way to build one and it refuses anything
//! that does not balance: at least two lines, every amount positive, and per currency the sum of
//! debits equals the sum of credits (checked arithmetic). The database checks the same rule again
//! in a trigger, so an unbalanced entry needs two independent bugs to exist.

use std::collections::BTreeMap;

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::ids::{BorrowerId, LoanId};
use crate::ledger::money::{Currency, Money};

/// One posting line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// GL account.
    pub account: Account,
    /// Debit or credit.
    pub direction: Direction,
    /// Positive amount in minor units.
    pub amount: Money,
    /// Currency of the amount.
    pub currency: Currency,
    /// Balance layer.
    pub layer: Layer,
    /// The loan this line belongs to, for sub-ledger lines.
    pub loan_id: Option<LoanId>,
    /// The borrower, where known.
    pub borrower_id: Option<BorrowerId>,
    /// The client's external reference (payments).
    pub external_ref: Option<String>,
}

impl JournalLine {
    /// A settled line for a loan.
    pub fn loan_line(
        account: Account,
        direction: Direction,
        amount: Money,
        currency: Currency,
        loan_id: LoanId,
        borrower_id: Option<BorrowerId>,
    ) -> Self {
        JournalLine {
            account,
            direction,
            amount,
            currency,
            layer: Layer::Settled,
            loan_id: Some(loan_id),
            borrower_id,
            external_ref: None,
        }
    }

    /// The same line on the other side: what a reversal posts.
    #[must_use]
    pub fn mirrored(&self) -> Self {
        JournalLine {
            direction: self.direction.opposite(),
            ..self.clone()
        }
    }
}

/// Where one loan's lines lie in an entry: the sequence numbers of the first and the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    /// The first line's sequence number (from 1).
    pub first: i64,
    /// The last line's sequence number.
    pub last: i64,
}

/// A balanced set of lines. Fields are private: construct with [`JournalEntry::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    lines: Vec<JournalLine>,
}

impl JournalEntry {
    /// Builds an entry, proving it balances per currency.
    pub fn new(lines: Vec<JournalLine>) -> Result<Self, LedgerError> {
        if lines.len() < 2 {
            return Err(LedgerError::Unbalanced("an entry needs at least two lines"));
        }
        let mut net: BTreeMap<Currency, i128> = BTreeMap::new();
        let mut totals: BTreeMap<Currency, Money> = BTreeMap::new();
        for line in &lines {
            if !line.amount.is_positive() {
                return Err(LedgerError::Unbalanced(
                    "every line amount must be positive",
                ));
            }
            let signed = match line.direction {
                Direction::Dr => i128::from(line.amount.minor()),
                Direction::Cr => -i128::from(line.amount.minor()),
            };
            *net.entry(line.currency).or_default() += signed;
            // The total of one side must itself fit in i64, or balances could overflow later.
            if line.direction == Direction::Dr {
                let t = totals.entry(line.currency).or_default();
                *t = t.checked_add(line.amount)?;
            }
        }
        if net.values().any(|n| *n != 0) {
            return Err(LedgerError::Unbalanced("debits and credits differ"));
        }
        Ok(JournalEntry { lines })
    }

    /// The lines, in posting order.
    pub fn lines(&self) -> &[JournalLine] {
        &self.lines
    }

    /// Every loan the entry touches, in id order, with where its lines are: the sequence
    /// numbers (from 1, in posting order) of its first and last line. Lines of other loans may
    /// lie in between; the span only bounds where to look (an accrual batch's loans each get a
    /// span of their own two lines).
    pub fn loan_spans(&self) -> BTreeMap<LoanId, LineSpan> {
        let mut spans: BTreeMap<LoanId, LineSpan> = BTreeMap::new();
        for (sequence, loan) in (1..)
            .zip(&self.lines)
            .filter_map(|(n, l)| Some((n, l.loan_id?)))
        {
            spans
                .entry(loan)
                .and_modify(|s| s.last = sequence)
                .or_insert(LineSpan {
                    first: sequence,
                    last: sequence,
                });
        }
        spans
    }

    /// The mirror image of this entry (every line on the other side): a reversal.
    #[must_use]
    pub fn mirrored(&self) -> JournalEntry {
        JournalEntry {
            lines: self.lines.iter().map(JournalLine::mirrored).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").expect("valid")
    }

    fn line(account: Account, direction: Direction, amount: i64) -> JournalLine {
        JournalLine {
            account,
            direction,
            amount: Money::from_minor(amount),
            currency: usd(),
            layer: Layer::Settled,
            loan_id: None,
            borrower_id: None,
            external_ref: None,
        }
    }

    #[test]
    fn an_unbalanced_entry_cannot_be_constructed() {
        let lines = vec![
            line(Account::PrincipalReceivable, Direction::Dr, 100),
            line(Account::DisbursementClearing, Direction::Cr, 99),
        ];
        assert!(JournalEntry::new(lines).is_err());
    }

    #[test]
    fn a_single_line_entry_cannot_be_constructed() {
        assert!(JournalEntry::new(vec![line(Account::Cash, Direction::Dr, 1)]).is_err());
    }

    #[test]
    fn zero_amount_lines_are_refused() {
        let lines = vec![
            line(Account::Cash, Direction::Dr, 0),
            line(Account::FeeIncome, Direction::Cr, 0),
        ];
        assert!(JournalEntry::new(lines).is_err());
    }

    #[test]
    fn debit_totals_that_overflow_are_refused() {
        let lines = vec![
            line(Account::Cash, Direction::Dr, i64::MAX),
            line(Account::Cash, Direction::Dr, 1),
            line(Account::FeeIncome, Direction::Cr, i64::MAX),
            line(Account::FeeIncome, Direction::Cr, 1),
        ];
        assert_eq!(JournalEntry::new(lines), Err(LedgerError::Overflow));
    }

    #[test]
    fn each_loan_spans_from_its_first_line_to_its_last_and_other_lines_name_no_loan() {
        let a = LoanId::parse("0190a1b2-c3d4-7e5f-8a9b-000000000001").expect("id");
        let b = LoanId::parse("0190a1b2-c3d4-7e5f-8a9b-000000000002").expect("id");
        let of = |loan: LoanId, account, direction| JournalLine {
            loan_id: Some(loan),
            ..line(account, direction, 5)
        };
        let entry = JournalEntry::new(vec![
            of(b, Account::InterestReceivable, Direction::Dr),
            line(Account::InterestIncome, Direction::Cr, 5),
            of(a, Account::InterestReceivable, Direction::Dr),
            of(a, Account::InterestIncome, Direction::Cr),
            of(b, Account::InterestIncome, Direction::Cr),
            line(Account::InterestReceivable, Direction::Dr, 5),
        ])
        .expect("balanced");
        let spans: Vec<_> = entry.loan_spans().into_iter().collect();
        assert_eq!(
            spans,
            [
                (a, LineSpan { first: 3, last: 4 }),
                (b, LineSpan { first: 1, last: 5 }),
            ]
        );
        let none = JournalEntry::new(vec![
            line(Account::Cash, Direction::Dr, 1),
            line(Account::FeeIncome, Direction::Cr, 1),
        ])
        .expect("balanced");
        assert!(none.loan_spans().is_empty());
    }

    proptest! {
        #[test]
        fn any_split_of_a_debit_into_credits_balances(total in 1i64..1_000_000_000, cuts in proptest::collection::vec(1i64..1000, 0..5)) {
            let mut credits = Vec::new();
            let mut left = total;
            for c in cuts {
                if c < left { credits.push(c); left -= c; }
            }
            credits.push(left);
            let mut lines = vec![line(Account::Cash, Direction::Dr, total)];
            lines.extend(credits.iter().map(|c| line(Account::FeesReceivable, Direction::Cr, *c)));
            let entry = JournalEntry::new(lines).expect("balanced");
            prop_assert_eq!(entry.mirrored().mirrored(), entry.clone());
            prop_assert!(JournalEntry::new(entry.mirrored().lines().to_vec()).is_ok());
        }
    }
}
