//! A trial balance (SPEC §6d): per currency, every account of the chart in code order with its
//! debit and credit totals and its balance on its normal side. Built from totals the store sums;
//! the sums are exact (`i128`), and the shape — every account, zero ones included — is decided
//! here once, for the `GET /v1/trial-balance` read, the totals a period close stores and the
//! reconciliation check that recomputes them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::ledger::accounts::{Account, Direction};
use crate::ledger::money::Currency;

/// One account's totals in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTotals {
    /// The account.
    pub account: Account,
    /// Sum of its debits.
    pub dr: i128,
    /// Sum of its credits.
    pub cr: i128,
}

impl AccountTotals {
    /// The balance on the account's normal side (negative when it is on the other side).
    pub fn balance(&self) -> i128 {
        match self.account.normal_side() {
            Direction::Dr => self.dr - self.cr,
            Direction::Cr => self.cr - self.dr,
        }
    }
}

/// One currency's trial balance: every chart account, in code order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialBalance {
    /// The currency.
    pub currency: Currency,
    /// Every account of the chart, in code order.
    pub accounts: Vec<AccountTotals>,
}

impl TrialBalance {
    /// The trial balance of `currency` from summed `(account, debits, credits)`; accounts the
    /// sums do not name are zero.
    pub fn from_totals(
        currency: Currency,
        totals: impl IntoIterator<Item = (Account, i128, i128)>,
    ) -> Self {
        let mut by_account: BTreeMap<Account, (i128, i128)> = BTreeMap::new();
        for (account, dr, cr) in totals {
            let slot = by_account.entry(account).or_default();
            slot.0 += dr;
            slot.1 += cr;
        }
        TrialBalance {
            currency,
            accounts: Account::ALL
                .iter()
                .map(|a| {
                    let (dr, cr) = by_account.get(a).copied().unwrap_or_default();
                    AccountTotals {
                        account: *a,
                        dr,
                        cr,
                    }
                })
                .collect(),
        }
    }

    /// Sum of every account's debits.
    pub fn dr_total(&self) -> i128 {
        self.accounts.iter().map(|a| a.dr).sum()
    }

    /// Sum of every account's credits.
    pub fn cr_total(&self) -> i128 {
        self.accounts.iter().map(|a| a.cr).sum()
    }

    /// Whether debits equal credits.
    pub fn balanced(&self) -> bool {
        self.dr_total() == self.cr_total()
    }

    /// The part a period close stores: each account's balance on its normal side.
    pub fn closing(&self) -> ClosingBalances {
        ClosingBalances {
            currency: self.currency,
            accounts: self
                .accounts
                .iter()
                .map(|a| (a.account, a.balance()))
                .collect(),
        }
    }
}

/// What a period close stores for one currency: every account's balance on its normal side.
/// Serialises as `{currency, accounts: [{account_code, balance_minor}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingBalances {
    /// The currency.
    pub currency: Currency,
    /// Every account of the chart, in code order, with its balance.
    pub accounts: Vec<(Account, i128)>,
}

/// One `{account_code, balance_minor}` of a stored close.
struct ClosingAccount(Account, i128);

impl Serialize for ClosingAccount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ClosingAccount", 2)?;
        st.serialize_field("account_code", self.0.code())?;
        st.serialize_field("balance_minor", &self.1.to_string())?;
        st.end()
    }
}

impl Serialize for ClosingBalances {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let accounts: Vec<ClosingAccount> = self
            .accounts
            .iter()
            .map(|(a, b)| ClosingAccount(*a, *b))
            .collect();
        let mut st = s.serialize_struct("ClosingBalances", 2)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("accounts", &accounts)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_account_is_listed_in_code_order_with_its_normal_side_balance() {
        let usd = Currency::parse("USD").expect("usd");
        let tb = TrialBalance::from_totals(
            usd,
            [
                (Account::DisbursementClearing, 0, 1_000),
                (Account::PrincipalReceivable, 1_000, 250),
                (Account::Cash, 250, 0),
            ],
        );
        let codes: Vec<&str> = tb.accounts.iter().map(|a| a.account.code()).collect();
        let chart: Vec<&str> = Account::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(codes, chart);
        assert_eq!(tb.accounts[1].balance(), 750);
        assert_eq!(tb.accounts[4].balance(), 1_000);
        assert_eq!((tb.dr_total(), tb.cr_total()), (1_250, 1_250));
        assert!(tb.balanced());
        let stored = serde_json::to_value(tb.closing()).expect("json");
        assert_eq!(stored["currency"], "USD");
        assert_eq!(
            stored["accounts"][1]["account_code"],
            Account::PrincipalReceivable.code()
        );
        assert_eq!(stored["accounts"][1]["balance_minor"], "750");
        assert_eq!(stored["accounts"][9]["balance_minor"], "0");
    }
}
