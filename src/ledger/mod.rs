//! Pure lending-ledger domain: money, ids, the chart of accounts, balanced journal entries,
//! posting rules, payment allocation and accrual arithmetic.
//!
//! Invariants owned here: money is an `i64` count of minor units and every operation on it is
//! checked; a [`journal::JournalEntry`] can only be constructed balanced; a loan's balances can
//! never go negative through [`loan::LoanBalances::apply`].
//!
//! Must not import: anything doing I/O (no rusqlite, no actix, no clock, no random ids). Callers
//! pass in ids and timestamps. No floating point anywhere in this module tree.

pub mod accounts;
pub mod accrual;
pub mod allocation;
pub mod commands;
pub mod error;
pub mod export;
pub mod ids;
pub mod journal;
pub mod loan;
pub mod money;
pub mod posting;
pub mod receipts;
pub mod rules;
pub mod state;

pub use error::{ItemProblem, LedgerError};

/// A date as `YYYY-MM-DD` (how dates appear on the wire, in descriptions and in the database).
pub fn iso_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
