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
    /// A database statement failed; the `rusqlite` error is the source.
    #[error("database error")]
    Database(#[source] rusqlite::Error),
    /// The read pool could not be built; the `r2d2` error is the source.
    #[error("read pool")]
    Pool(#[from] r2d2::Error),
    /// Something the store needed could not be done (a file opened or created, a thread
    /// started, an answer serialised): `context` says what, the source says why.
    #[error("{context}")]
    Failed {
        /// What was being done, with the path or name it concerns.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored row breaks what the schema promises, or a file is not what the command needs
    /// (missing, or a backup target that already exists); there is no lower-level cause.
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// A stored value the schema should not have let in (`what`: `table.column`).
    pub(crate) fn corrupt(what: &str) -> StoreError {
        StoreError::Invalid(format!("stored row is not valid: {what}"))
    }

    /// A failure with what was being done (`context`) and why (`source`, kept as the source).
    pub fn failed(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Failed {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::DiskFull
        {
            return StoreError::StorageFull;
        }
        StoreError::Database(e)
    }
}
