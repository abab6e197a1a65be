//! The ledger's one error type: business-rule failures, each of which the HTTP layer maps to a
//! stable problem `code`.

use crate::ledger::ids::LoanId;

/// A business rule refused the operation. Nothing is written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// An amount that must be strictly positive was zero.
    #[error("amount must be positive")]
    AmountMustBePositive,
    /// Arithmetic on minor units would overflow `i64`.
    #[error("amount overflow")]
    Overflow,
    /// A journal entry does not balance or has fewer than two lines.
    #[error("journal entry is not balanced: {0}")]
    Unbalanced(&'static str),
    /// The loan is already bound to another borrower.
    #[error("loan {0} belongs to another borrower")]
    BorrowerMismatch(LoanId),
    /// The loan is already bound to another currency.
    #[error("loan {0} uses another currency")]
    CurrencyMismatch(LoanId),
    /// The loan does not exist for this tenant.
    #[error("loan {0} not found")]
    LoanNotFound(LoanId),
    /// The entry would be dated before the loan's first disbursement.
    #[error("loan {0} has no entry dated this early: its first disbursement is later")]
    EffectiveBeforeLoan(LoanId),
    /// Applying the entry would make a loan balance negative.
    #[error("a balance of loan {0} would become negative")]
    NegativeBalance(LoanId),
}
