//! The store's one error type. Business refusals are the ledger's ([`LedgerError`], decided in
//! memory before anything is written); the rest are storage conditions the HTTP layer turns into
//! 404, 503 or an opaque 500 (logged once at the boundary, never leaked).

pub use crate::ledger::ItemProblem;
use crate::ledger::LedgerError;

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
    /// Every read connection is busy, or this tenant already runs its share of heavy reads.
    #[error("read capacity exhausted")]
    ReadBusy,
    /// The client went away (or the read's time ran out) and the read was interrupted.
    #[error("read cancelled")]
    Cancelled,
    /// The writer queue is full.
    #[error("writer queue full")]
    Overloaded,
    /// The writer is not running (starting or stopping).
    #[error("writer unavailable")]
    Unavailable,
    /// The disk or database is full.
    #[error("storage full")]
    StorageFull,
    /// The write is committed locally, but Litestream's replica did not confirm it within the
    /// replication timeout (`HPTS_DURABILITY=replicated`).
    #[error("replication unavailable")]
    ReplicationUnavailable,
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
