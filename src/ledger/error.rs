//! The ledger's one error type: every business refusal of a write, each of which the HTTP layer
//! maps to a stable problem `code`. A refusal is decided before anything is written.

use crate::ledger::ids::LoanId;

/// One refused item of a batch (an accrual loan), reported as `loans[index].field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// Position in the request's `loans` array.
    pub index: usize,
    /// Field of that item.
    pub field: &'static str,
    /// Stable `snake_case` code.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
}

/// One refused field of a request that lists many (an adjustment's `lines[i].account_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// JSON path of the field.
    pub field: String,
    /// Stable `snake_case` code.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
}

/// A business rule refused the operation. Nothing is written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// An amount that must be strictly positive was zero.
    #[error("amount must be positive")]
    AmountMustBePositive,
    /// Arithmetic on minor units would overflow `i64` (no request field known yet).
    #[error("amount overflow")]
    Overflow,
    /// A balance or total the ledger keeps would leave the exact `i64` range; `field` names the
    /// request field whose amount would push it out.
    #[error("amount out of range at {field}: {detail}")]
    OutOfRange {
        /// Request field (`amount_minor`, `loans[3].interest_minor`, ...).
        field: String,
        /// Which balance or total would overflow.
        detail: String,
    },
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
    /// The referenced entry does not exist in the caller's tenant.
    #[error("no such journal entry")]
    EntryNotFound,
    /// The entry is already reversed.
    #[error("entry already reversed")]
    AlreadyReversed,
    /// A reversal cannot itself be reversed.
    #[error("a reversal cannot be reversed")]
    CannotReverseReversal,
    /// Reversing would drive a loan balance negative.
    #[error("reversal blocked by later activity")]
    ReversalBlocked,
    /// A reversal dated before the entry it reverses.
    #[error("reversal dated before its original")]
    EffectiveBeforeOriginal,
    /// The payment's external reference was used before.
    #[error("external_ref already used")]
    DuplicateExternalRef,
    /// Some items of a batch were refused (all-or-nothing).
    #[error("batch refused")]
    BatchRejected(Vec<ItemProblem>),
    /// The referenced business event does not exist in the caller's tenant, or is of another
    /// kind than the field names.
    #[error("no such event")]
    EventNotFound,
    /// The disbursement is already settled.
    #[error("disbursement already settled")]
    AlreadySettled,
    /// The payment is already returned.
    #[error("payment already returned")]
    AlreadyReturned,
    /// The loan is already charged off.
    #[error("loan already charged off")]
    AlreadyChargedOff,
    /// The referenced event is reversed.
    #[error("the referenced event is reversed")]
    EventReversed,
    /// The payment was returned, so it cannot be reversed.
    #[error("the payment was returned")]
    EventReturned,
    /// A waiver above what can be waived now.
    #[error("at most {waivable} of this fee can be waived now")]
    WaiverExceedsOutstanding {
        /// What could be waived.
        waivable: crate::ledger::money::Money,
    },
    /// A charge-off of a loan that owes nothing.
    #[error("the loan has nothing outstanding to charge off")]
    NothingToChargeOff,
    /// The write is not allowed on a charged-off loan; `field` names what the client sent.
    #[error("the loan is charged off")]
    LoanChargedOff {
        /// Request field.
        field: &'static str,
    },
    /// The write is dated on or before the tenant's lock date; `field` names the date.
    #[error("the period through {lock} is closed")]
    PeriodClosed {
        /// Request field (`effective_at`, `accrual_date`).
        field: &'static str,
        /// The lock date.
        lock: time::Date,
    },
    /// A close of today or a later day.
    #[error("only a day before today can be closed")]
    CloseDateNotPast,
    /// A close on or before the current lock date.
    #[error("the books are already closed through {lock}")]
    PeriodAlreadyClosed {
        /// The lock date.
        lock: time::Date,
    },
    /// Fields of a multi-line request refused (adjustments).
    #[error("lines refused")]
    LinesRejected(Vec<FieldProblem>),
}

impl LedgerError {
    /// Names `field` on an out-of-range refusal that does not name one yet (an overflow found
    /// by shared arithmetic, which does not know which request it serves).
    #[must_use]
    pub fn at_field(self, field: &str) -> LedgerError {
        match self {
            LedgerError::Overflow => LedgerError::OutOfRange {
                field: field.to_owned(),
                detail: format!("a balance or total would exceed {}", i64::MAX),
            },
            LedgerError::OutOfRange { field: f, detail } if f.is_empty() => {
                LedgerError::OutOfRange {
                    field: field.to_owned(),
                    detail,
                }
            }
            other => other,
        }
    }
}
