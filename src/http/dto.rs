//! Response shapes of the read endpoints (SPEC §7). Money is a decimal string; ids lowercase.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::ledger::money::Money;
use crate::store::{EntryView, LoanView};

/// `GET /v1/loans/{loan_id}/balance`.
#[derive(Debug, Serialize)]
pub struct LoanBalance {
    loan_id: String,
    borrower_id: String,
    currency: String,
    status: &'static str,
    as_of_date: String,
    principal_outstanding_minor: Money,
    interest_receivable_minor: Money,
    fees_receivable_minor: Money,
    suspense_minor: Money,
    total_exposure_minor: Money,
    disbursed_total_minor: Money,
    paid_total_minor: Money,
    charged_off_minor: Money,
    recovered_minor: Money,
    last_activity_at: Option<String>,
}

impl LoanBalance {
    /// Shapes a loan view.
    pub fn new(v: LoanView, as_of_date: String) -> Self {
        LoanBalance {
            total_exposure_minor: v.total_exposure(),
            loan_id: v.loan_id,
            borrower_id: v.borrower_id,
            currency: v.currency,
            status: v.status,
            as_of_date,
            principal_outstanding_minor: v.principal,
            interest_receivable_minor: v.interest,
            fees_receivable_minor: v.fees,
            suspense_minor: v.suspense,
            disbursed_total_minor: v.disbursed_total,
            paid_total_minor: v.paid_total,
            charged_off_minor: v.charged_off,
            recovered_minor: v.recovered,
            last_activity_at: v.last_activity_at,
        }
    }
}

/// One journal line.
#[derive(Debug, Serialize)]
pub struct Line {
    sequence: i64,
    account_code: String,
    direction: String,
    amount_minor: Money,
    currency: String,
    layer: String,
    loan_id: Option<String>,
    borrower_id: Option<String>,
    external_ref: Option<String>,
}

/// `GET /v1/journal-entries/{id}`.
#[derive(Debug, Serialize)]
#[expect(
    clippy::struct_field_names,
    reason = "wire field names are fixed by the API contract"
)]
pub struct JournalEntry {
    journal_entry_id: String,
    event_type: String,
    effective_at: String,
    posted_at: String,
    correlation_id: String,
    reverses_entry_id: Option<String>,
    reversed_by_entry_id: Option<String>,
    description: String,
    actor: Option<String>,
    metadata: Option<Box<RawValue>>,
    lines: Vec<Line>,
}

impl From<EntryView> for JournalEntry {
    fn from(v: EntryView) -> Self {
        JournalEntry {
            journal_entry_id: v.journal_entry_id,
            event_type: v.event_type,
            effective_at: v.effective_at,
            posted_at: v.posted_at,
            correlation_id: v.correlation_id,
            reverses_entry_id: v.reverses_entry_id,
            reversed_by_entry_id: v.reversed_by_entry_id,
            description: v.description,
            actor: v.actor,
            // Stored as the client sent it (key order kept); returned verbatim.
            metadata: v.metadata.and_then(|m| RawValue::from_string(m).ok()),
            lines: v
                .lines
                .into_iter()
                .map(|l| Line {
                    sequence: l.sequence,
                    account_code: l.account_code,
                    direction: l.direction,
                    amount_minor: l.amount,
                    currency: l.currency,
                    layer: l.layer,
                    loan_id: l.loan_id,
                    borrower_id: l.borrower_id,
                    external_ref: l.external_ref,
                })
                .collect(),
        }
    }
}
