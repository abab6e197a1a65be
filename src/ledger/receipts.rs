//! What a committed write answers. These are stored verbatim (as JSON) with the idempotency
//! record in the same transaction, so a replay returns byte-for-byte the first answer.

use serde::Serialize;

use crate::ledger::allocation::Allocation;
use crate::ledger::ids::{EntryId, EventId, LoanId};
use crate::ledger::money::{Currency, Money};

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
    /// Recovered on a charged-off loan (4200); "0" for an ordinary payment.
    pub recovery_minor: Money,
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

/// Answer of POST /v1/disbursement-settlements.
#[derive(Debug, Clone, Serialize)]
pub struct SettlementReceipt {
    /// The business event.
    pub settlement_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// The disbursement settled.
    pub disbursement_event_id: EventId,
    /// Its amount.
    pub amount_minor: Money,
    /// Its currency.
    pub currency: Currency,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/payment-returns.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnReceipt {
    /// The business event.
    pub return_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// The payment returned.
    pub payment_event_id: EventId,
    /// The parts of its allocation that went back on the loan.
    pub returned_allocation: Allocation,
    /// The returned-payment fee ("0" without one).
    pub nsf_fee_minor: Money,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/fee-waivers.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverReceipt {
    /// The business event.
    pub waiver_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// The fee waived.
    pub fee_event_id: EventId,
    /// Amount waived.
    pub waived_minor: Money,
    /// Commit timestamp.
    pub posted_at: String,
}

/// What a charge-off wrote off, per balance.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChargedOff {
    /// Principal.
    pub principal_minor: Money,
    /// Interest.
    pub interest_minor: Money,
    /// Fees.
    pub fees_minor: Money,
}

/// Answer of POST /v1/charge-offs.
#[derive(Debug, Clone, Serialize)]
pub struct ChargeOffReceipt {
    /// The business event.
    pub chargeoff_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// The loan.
    pub loan_id: LoanId,
    /// Per balance.
    pub charged_off: ChargedOff,
    /// Their sum.
    pub total_minor: Money,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/adjustments.
#[derive(Debug, Clone, Serialize)]
pub struct AdjustmentReceipt {
    /// The business event.
    pub adjustment_event_id: EventId,
    /// Its journal entry.
    pub journal_entry_id: EntryId,
    /// Commit timestamp.
    pub posted_at: String,
}

/// Answer of POST /v1/period-closes.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodCloseReceipt {
    /// The close.
    pub period_close_id: uuid::Uuid,
    /// The last day closed (`YYYY-MM-DD`).
    pub through_date: String,
    /// Commit timestamp.
    pub closed_at: String,
    /// The trial balance of every currency as of `through_date`.
    pub trial_balance: Vec<crate::ledger::trial_balance::ClosingBalances>,
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
    /// Settlement.
    Settlement(SettlementReceipt),
    /// Payment return.
    Return(ReturnReceipt),
    /// Fee waiver.
    Waiver(WaiverReceipt),
    /// Charge-off.
    ChargeOff(ChargeOffReceipt),
    /// Manual adjustment.
    Adjustment(AdjustmentReceipt),
}
