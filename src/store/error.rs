//! The store's one error type. Business refusals carry enough detail for the HTTP layer's
//! problem table; database failures are opaque (logged once at the boundary, never leaked).

use crate::ledger::LedgerError;

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

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A ledger rule refused the command.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// The referenced resource does not exist for this tenant.
    #[error("not found")]
    NotFound,
    /// The entry is already reversed.
    #[error("entry already reversed")]
    AlreadyReversed,
    /// A reversal cannot itself be reversed.
    #[error("a reversal cannot be reversed")]
    CannotReverseReversal,
    /// Reversing would drive a loan balance negative.
    #[error("reversal blocked by later activity")]
    ReversalBlocked,
    /// A balance or total the ledger keeps would leave the exact `i64` range; `field` names the
    /// request field whose amount would push it out.
    #[error("amount out of range at {field}: {detail}")]
    AmountOutOfRange {
        /// Request field (`amount_minor`, `loans[3].interest_minor`, ...).
        field: String,
        /// Which balance or total would overflow.
        detail: String,
    },
    /// A reversal dated before the entry it reverses.
    #[error("reversal dated before its original")]
    EffectiveBeforeOriginal,
    /// Every read connection is busy, or this tenant already runs its share of heavy reads.
    #[error("read capacity exhausted")]
    ReadBusy,
    /// The client went away (or the read's time ran out) and the read was interrupted.
    #[error("read cancelled")]
    Cancelled,
    /// The payment's external reference was used before.
    #[error("external_ref already used")]
    DuplicateExternalRef,
    /// Some items of a batch were refused (all-or-nothing).
    #[error("batch refused")]
    BatchRejected(Vec<ItemProblem>),
    /// The writer queue is full.
    #[error("writer queue full")]
    Overloaded,
    /// The writer is not running (starting or stopping).
    #[error("writer unavailable")]
    Unavailable,
    /// The disk or database is full.
    #[error("storage full")]
    StorageFull,
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::DiskFull
        {
            return StoreError::StorageFull;
        }
        StoreError::Database(e.to_string())
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Database(format!("read pool: {e}"))
    }
}
