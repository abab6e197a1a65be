//! What a committed write answers. These are stored verbatim (as JSON) with the idempotency
//! record in the same transaction, so a replay returns byte-for-byte the first answer.

use serde::Serialize;

use crate::ledger::allocation::Allocation;
use crate::ledger::ids::{EntryId, EventId};
use crate::ledger::money::Money;

/// Answer of POST /v1/disbursements.
#[derive(Debug, Clone, Serialize)]
pub struct DisbursementReceipt {
    /// The business event.
    pub disbursement_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// Commit timestamp (RFC 3339, UTC, `Z`).
    pub posted_at: String,
}

/// Answer of POST /v1/fees.
#[derive(Debug, Clone, Serialize)]
pub struct FeeReceipt {
    /// The business event.
    pub fee_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/payments.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentReceipt {
    /// The business event.
    pub payment_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// How the payment was split.
    pub allocation: Allocation,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/accruals/batch.
#[derive(Debug, Clone, Serialize)]
pub struct AccrualReceipt {
    /// The business event.
    pub accrual_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// Loans accrued.
    pub loan_count: usize,
    /// Sum of interest accrued.
    pub total_accrued_minor: Money,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/reversals.
#[derive(Debug, Clone, Serialize)]
pub struct ReversalReceipt {
    /// The reversal's journal entry.
    pub journal_entry_id: EntryId,
    /// The entry it reverses.
    pub reverses_entry_id: EntryId,
    /// Commit timestamp.
    pub posted_at: String,
    /// The original business event's id.
    pub correlation_id: EventId,
}

/// Any receipt.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Receipt {
    /// Disbursement.
    Disbursement(DisbursementReceipt),
    /// Fee.
    Fee(FeeReceipt),
    /// Payment.
    Payment(PaymentReceipt),
    /// Accrual batch.
    Accrual(AccrualReceipt),
    /// Reversal.
    Reversal(ReversalReceipt),
}
