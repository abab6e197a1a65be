//! The `OpenAPI` schemas of the write answers. The receipts themselves are built and serialised
//! by `src/ledger/receipts.rs`, which must not depend on utoipa, and stored verbatim for
//! replays; these types describe that JSON (never built), and the contract test
//! `tests/api/openapi.rs` validates every real answer against them.

#![expect(
    clippy::struct_field_names,
    reason = "wire field names are fixed by the API contract"
)]

use utoipa::ToSchema;

use crate::http::schema::{AccountCode, CurrencyCode, MinorUnits, SignedMinorUnits};

/// Answer of `POST /v1/disbursements`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct DisbursementReceipt {
    /// The business event (`UUIDv7`).
    #[schema(format = "uuid")]
    disbursement_event_id: String,
    /// Its journal entry (`UUIDv7`).
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`; the same wherever the entry is shown.
    #[schema(format = DateTime, example = "2026-11-01T09:30:00.123456Z")]
    posted_at: String,
}

/// Answer of `POST /v1/payments`, for an ordinary payment and for a recovery (a payment on a
/// charged-off loan) alike.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PaymentReceipt {
    /// The business event (`payment_received`, or `recovery` on a charged-off loan).
    #[schema(format = "uuid")]
    payment_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// For a recovery: every part `"0"` except `suspense_minor`.
    allocation: Allocation,
    /// Credited to recoveries (4200): at most the loan's `charged_off_minor` less its
    /// `recovered_minor`. `"0"` for an ordinary payment.
    recovery_minor: MinorUnits,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// How a payment was split. The parts (plus `recovery_minor` for a recovery) sum to the
/// payment amount.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct Allocation {
    /// Applied to fees receivable (1300).
    fees_minor: MinorUnits,
    /// Applied to interest receivable (1200).
    interest_minor: MinorUnits,
    /// Applied to principal receivable (1100).
    principal_minor: MinorUnits,
    /// Left over, held in borrower suspense (2100).
    suspense_minor: MinorUnits,
}

/// Answer of `POST /v1/fees`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct FeeReceipt {
    /// The business event.
    #[schema(format = "uuid")]
    fee_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/accruals/batch`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AccrualReceipt {
    /// The business event.
    #[schema(format = "uuid")]
    accrual_event_id: String,
    /// The one journal entry of the batch.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// Loans accrued.
    #[schema(minimum = 1, maximum = 10000)]
    loan_count: u32,
    /// Sum of the interest accrued, in minor units.
    total_accrued_minor: MinorUnits,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/reversals`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ReversalReceipt {
    /// The reversal's journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// The entry it reverses.
    #[schema(format = "uuid")]
    reverses_entry_id: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
    /// The original business event's id.
    #[schema(format = "uuid")]
    correlation_id: String,
}

/// Answer of `POST /v1/disbursement-settlements`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct DisbursementSettlementReceipt {
    /// The business event (`disbursement_settled`).
    #[schema(format = "uuid")]
    settlement_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// The disbursement settled.
    #[schema(format = "uuid")]
    disbursement_event_id: String,
    /// The disbursement's amount, in minor units.
    amount_minor: MinorUnits,
    /// The loan's currency.
    currency: CurrencyCode,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/payment-returns`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PaymentReturnReceipt {
    /// The business event (`payment_returned`).
    #[schema(format = "uuid")]
    return_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// The payment returned.
    #[schema(format = "uuid")]
    payment_event_id: String,
    /// What went back onto the loan: the returned payment's own allocation. For a returned
    /// recovery: fees, interest and principal `"0"`, suspense its suspense part.
    returned_allocation: Allocation,
    /// The fee assessed with the return, `"0"` without one.
    nsf_fee_minor: MinorUnits,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/fee-waivers`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct FeeWaiverReceipt {
    /// The business event (`fee_waived`).
    #[schema(format = "uuid")]
    waiver_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// The fee waived.
    #[schema(format = "uuid")]
    fee_event_id: String,
    /// Amount waived, in minor units.
    waived_minor: MinorUnits,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/charge-offs`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ChargeOffReceipt {
    /// The business event (`chargeoff`).
    #[schema(format = "uuid")]
    chargeoff_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// The loan written off.
    #[schema(format = "uuid")]
    loan_id: String,
    charged_off: ChargedOffAmounts,
    /// Principal + interest + fees written off; the loan's `charged_off_minor`.
    total_minor: MinorUnits,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// What a charge-off wrote off: the loan's balances at the charge-off.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ChargedOffAmounts {
    /// Principal receivable (Cr 1100, Dr 5000 credit losses).
    principal_minor: MinorUnits,
    /// Interest receivable (Cr 1200, Dr 4000 interest income).
    interest_minor: MinorUnits,
    /// Fees receivable (Cr 1300, Dr 4100 fee income).
    fees_minor: MinorUnits,
}

/// Answer of `POST /v1/adjustments`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AdjustmentReceipt {
    /// The business event (`manual_adjustment`).
    #[schema(format = "uuid")]
    adjustment_event_id: String,
    /// Its journal entry.
    #[schema(format = "uuid")]
    journal_entry_id: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
}

/// Answer of `POST /v1/period-closes`. A close posts no journal entry and sends no webhook.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PeriodCloseReceipt {
    /// The close (`UUIDv7`).
    #[schema(format = "uuid")]
    period_close_id: String,
    /// The last day closed: the tenant's lock date from now on.
    #[schema(format = Date, example = "2026-11-30")]
    through_date: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime, example = "2026-12-01T08:00:00.123456Z")]
    closed_at: String,
    /// The trial balance as of `through_date` of every currency the tenant has posted in,
    /// in currency-code order; empty for a tenant without entries. Stored with the close
    /// and recomputed by the reconciliation check `closed_periods_unchanged`.
    trial_balance: Vec<ClosingTrialBalance>,
}

/// One currency's trial balance as stored by a period close.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ClosingTrialBalance {
    /// ISO 4217 code.
    currency: CurrencyCode,
    /// Every account of the chart, in code order, zero balances included.
    #[schema(min_items = 1)]
    accounts: Vec<ClosingAccountBalance>,
}

/// One account's balance in a stored trial balance.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ClosingAccountBalance {
    /// GL account.
    account_code: AccountCode,
    /// Balance on the account's normal side, in minor units; may be negative.
    balance_minor: SignedMinorUnits,
}
