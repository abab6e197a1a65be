//! The per-tenant hash chain over journal entries: `hash = SHA-256(prev_hash ‖ canonical
//! content)`. Written by the writer, recomputed by reconciliation and `hpts verify`, so an edit
//! made behind the service's back (sqlite3 CLI with the triggers dropped) is detected.

use sha2::{Digest, Sha256};

/// Hash that starts every tenant's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The parts of an entry that the chain covers.
#[derive(Debug, Clone)]
pub struct ChainedEntry<'a> {
    /// Entry id.
    pub entry_id: &'a str,
    /// Tenant.
    pub tenant_id: &'a str,
    /// Business event.
    pub event_id: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// Effective date.
    pub effective_at: &'a str,
    /// Commit timestamp.
    pub posted_at: &'a str,
    /// Correlation id.
    pub correlation_id: &'a str,
    /// Reversed entry, if any.
    pub reverses_entry_id: Option<&'a str>,
    /// Metadata JSON, if any.
    pub metadata: Option<&'a str>,
}

/// One line as the chain covers it.
#[derive(Debug, Clone)]
pub struct ChainedLine<'a> {
    /// Line number.
    pub sequence: i64,
    /// Account code.
    pub account_code: &'a str,
    /// DR / CR.
    pub direction: &'a str,
    /// Amount.
    pub amount_minor: i64,
    /// Currency.
    pub currency: &'a str,
    /// Layer.
    pub layer: &'a str,
    /// Loan.
    pub loan_id: Option<&'a str>,
    /// Borrower.
    pub borrower_id: Option<&'a str>,
    /// External reference.
    pub external_ref: Option<&'a str>,
}

/// Computes an entry's hash from its predecessor's hash and its content.
pub fn entry_hash(prev_hash: &str, entry: &ChainedEntry<'_>, lines: &[ChainedLine<'_>]) -> String {
    let mut h = Sha256::new();
    // Each field is length-prefixed so no two different contents serialise the same way.
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    let opt = |s: Option<&str>| s.map_or_else(|| "\u{0}null".to_owned(), str::to_owned);
    field(prev_hash);
    field(entry.entry_id);
    field(entry.tenant_id);
    field(entry.event_id);
    field(entry.event_type);
    field(entry.effective_at);
    field(entry.posted_at);
    field(entry.correlation_id);
    field(&opt(entry.reverses_entry_id));
    field(&opt(entry.metadata));
    for l in lines {
        field(&l.sequence.to_string());
        field(l.account_code);
        field(l.direction);
        field(&l.amount_minor.to_string());
        field(l.currency);
        field(l.layer);
        field(&opt(l.loan_id));
        field(&opt(l.borrower_id));
        field(&opt(l.external_ref));
    }
    hex::encode(h.finalize())
}
