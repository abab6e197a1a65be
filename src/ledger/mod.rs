//! Pure lending-ledger domain: money, ids, the chart of accounts, balanced journal entries,
//! posting rules, payment allocation and accrual arithmetic.
//!
//! Invariants owned here: money is an `i64` count of minor units and every operation on it is
//! checked; a [`journal::JournalEntry`] can only be constructed balanced; a loan's balances can
//! never go negative through [`loan::LoanBalances::apply`].
//!
//! Must not import: anything doing I/O (no rusqlite, no actix, no clock, no random ids). Callers
//! pass in ids and timestamps. No floating point anywhere in this module tree.

/// Declares a closed enum together with its wire names, from ONE list: the enum, `WIRE` (every
/// accepted wire value, in declaration order), `as_str` and `parse`. The HTTP layer builds each
/// enum's `OpenAPI` schema from `WIRE`, so the document cannot list other values than the parser
/// accepts. Extra attributes (docs, more derives) go before the name.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every accepted wire value.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];

            /// Wire form.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the wire form.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

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
pub mod trial_balance;

pub use error::{ItemProblem, LedgerError};

/// A date as `YYYY-MM-DD` (how dates appear on the wire, in descriptions and in the database).
pub fn iso_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
