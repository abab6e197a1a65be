//! The state the writer decides with, as plain values: a loan as the ledger knows it
//! ([`LoanState`]) and a tenant's GL totals ([`GlTotals`]). Moving them is checked arithmetic
//! only; loading and storing them is the store's business.
//!
//! Exact totals: every account total and loan balance of a currency is bounded by that
//! currency's trial-balance total (the sum of every account's debits, which equals the sum of
//! credits), so [`GlTotals::post`] keeping that one total within `i64` keeps them all exact.

use std::collections::HashMap;

use time::Date;

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::ids::{BorrowerId, LoanId};
use crate::ledger::journal::JournalEntry;
use crate::ledger::loan::LoanBalances;
use crate::ledger::money::{Currency, Money};

/// A loan as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanState {
    /// Bound by the first disbursement.
    pub borrower_id: BorrowerId,
    /// Bound by the first disbursement.
    pub currency: Currency,
    /// Effective date of the disbursement that opened the loan (none on loans recorded before
    /// opening dates were kept).
    pub opened_on: Option<Date>,
    /// Sub-ledger balances.
    pub balances: LoanBalances,
}

impl LoanState {
    /// A loan just opened by a disbursement dated `opened_on`.
    pub fn opened(borrower_id: BorrowerId, currency: Currency, opened_on: Date) -> Self {
        LoanState {
            borrower_id,
            currency,
            opened_on: Some(opened_on),
            balances: LoanBalances::default(),
        }
    }

    /// Refuses an entry on this loan dated before it opened.
    pub fn check_dated(&self, loan_id: LoanId, date: Date) -> Result<(), LedgerError> {
        crate::ledger::loan::check_not_before_opening(loan_id, self.opened_on, date)
    }
}

/// One GL account total: debits and credits in one currency and layer.
pub type GlKey = (Account, Currency, Layer);

/// A tenant's GL totals per (account, currency, layer), and per currency the trial-balance total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlTotals {
    accounts: HashMap<GlKey, (Money, Money)>,
    debits: HashMap<Currency, Money>,
}

impl GlTotals {
    /// Totals from stored rows `(key, debits, credits)`; refuses rows whose sum per currency is
    /// already out of range (a database an older release let overflow).
    pub fn from_rows(
        rows: impl IntoIterator<Item = (GlKey, Money, Money)>,
    ) -> Result<Self, LedgerError> {
        let mut totals = GlTotals::default();
        for (key, dr, cr) in rows {
            let d = totals.debits.entry(key.1).or_default();
            *d = d.checked_add(dr)?;
            totals.accounts.insert(key, (dr, cr));
        }
        Ok(totals)
    }

    /// Every currency the tenant has posted in, in code order.
    pub fn currencies(&self) -> Vec<Currency> {
        let mut c: Vec<Currency> = self.debits.keys().copied().collect();
        c.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        c
    }

    /// The totals of one account.
    pub fn get(&self, key: &GlKey) -> (Money, Money) {
        self.accounts.get(key).copied().unwrap_or_default()
    }

    /// Adds an entry; refuses (leaving `self` untouched) if the currency's trial-balance total
    /// or any account total would leave `i64`. Returns the keys it moved.
    pub fn post(&mut self, entry: &JournalEntry) -> Result<Vec<GlKey>, LedgerError> {
        let mut moved: HashMap<GlKey, (Money, Money)> = HashMap::new();
        let mut debits: HashMap<Currency, Money> = HashMap::new();
        for line in entry.lines() {
            let key = (line.account, line.currency, line.layer);
            let slot = moved.entry(key).or_insert_with(|| self.get(&key));
            let overflow = |_| LedgerError::OutOfRange {
                field: String::new(),
                detail: format!(
                    "the total of account {} in {} would exceed {}",
                    line.account.code(),
                    line.currency,
                    i64::MAX
                ),
            };
            if line.direction == Direction::Dr {
                slot.0 = slot.0.checked_add(line.amount).map_err(overflow)?;
                let d = debits.entry(line.currency).or_insert_with(|| {
                    self.debits.get(&line.currency).copied().unwrap_or_default()
                });
                *d = d
                    .checked_add(line.amount)
                    .map_err(|_| LedgerError::OutOfRange {
                        field: String::new(),
                        detail: format!(
                            "the {} trial-balance total would exceed {}",
                            line.currency,
                            i64::MAX
                        ),
                    })?;
            } else {
                slot.1 = slot.1.checked_add(line.amount).map_err(overflow)?;
            }
        }
        let keys = moved.keys().copied().collect();
        self.accounts.extend(moved);
        self.debits.extend(debits);
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::journal::JournalLine;

    fn usd() -> Currency {
        Currency::parse("USD").expect("usd")
    }

    fn entry(amount: i64) -> JournalEntry {
        let line = |account, direction| JournalLine {
            account,
            direction,
            amount: Money::from_minor(amount),
            currency: usd(),
            layer: Layer::Settled,
            loan_id: None,
            borrower_id: None,
            external_ref: None,
        };
        JournalEntry::new(vec![
            line(Account::PrincipalReceivable, Direction::Dr),
            line(Account::DisbursementClearing, Direction::Cr),
        ])
        .expect("balanced")
    }

    #[test]
    fn the_trial_balance_total_of_a_currency_never_leaves_i64() {
        let mut gl = GlTotals::default();
        gl.post(&entry(i64::MAX)).expect("fits exactly");
        let before = gl.clone();
        assert!(matches!(
            gl.post(&entry(1)),
            Err(LedgerError::OutOfRange { .. })
        ));
        assert_eq!(gl, before, "a refused entry moves nothing");
        let key = (Account::PrincipalReceivable, usd(), Layer::Settled);
        assert_eq!(gl.get(&key), (Money::from_minor(i64::MAX), Money::ZERO));
    }

    #[test]
    fn stored_totals_that_already_overflow_are_refused() {
        let key = |a| (a, usd(), Layer::Settled);
        let rows = [
            (key(Account::Cash), Money::from_minor(i64::MAX), Money::ZERO),
            (
                key(Account::PrincipalReceivable),
                Money::from_minor(1),
                Money::ZERO,
            ),
        ];
        assert_eq!(GlTotals::from_rows(rows), Err(LedgerError::Overflow));
    }
}
