//! `POST /v1/disbursements` (`hpts:disbursements:write`): Dr 1100 / Cr 2000; the first
//! disbursement opens the loan and binds borrower and currency.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{CurrencyCode, Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Disbursement, DisbursementMethod};
use crate::ledger::ids::{BorrowerId, LoanId};

/// Record a disbursement
///
/// Requires scope `hpts:disbursements:write`. Posts Dr 1100 principal receivable / Cr 2000
/// disbursement clearing. The first disbursement of a loan opens it and binds its borrower
/// and currency.
#[utoipa::path(
    post,
    path = "/v1/disbursements",
    operation_id = "create_disbursement",
    tag = "writes",
    request_body(content = DisbursementRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::DisbursementReceipt),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `borrower_mismatch`, `currency_mismatch`, `amount_must_be_positive` or `loan_charged_off` (the loan is charged off).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:disbursements:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let borrower_id = o.uuid("borrower_id", true, &mut r);
    let amount = o.money("amount_minor", true, &mut r);
    let currency = o.currency("currency", &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let method = o.one_of(
        "method",
        true,
        DisbursementMethod::parse,
        DisbursementMethod::WIRE,
        &mut r,
    );
    let destination_ref = o.text("destination_ref", false, 1, 255, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, borrower_id, amount, currency, effective_at, method) {
        (
            Some(loan_id),
            Some(borrower_id),
            Some(amount),
            Some(currency),
            Some(effective_at),
            Some(method),
        ) => Ok(Command::Disburse(Disbursement {
            loan_id: LoanId::from_uuid(loan_id),
            borrower_id: BorrowerId::from_uuid(borrower_id),
            amount,
            currency,
            effective_at,
            method,
            destination_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::DisbursementsWrite,
    route: "POST /v1/disbursements",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/disbursements`. The first disbursement of a loan opens it and binds its borrower
/// and currency; later ones must match them. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct DisbursementRequest {
    /// The loan, chosen by the client (any case; returned lowercase).
    #[schema(format = "uuid")]
    loan_id: String,
    /// The borrower (bound by the first disbursement).
    #[schema(format = "uuid")]
    borrower_id: String,
    /// Amount in minor units, greater than 0 (`"0"` is 422 `amount_must_be_positive`), at
    /// most 9223372036854775807.
    amount_minor: MinorUnits,
    /// An active ISO 4217 code (else 400, `errors[].code` `unknown_currency`); bound by the
    /// first disbursement.
    currency: CurrencyCode,
    /// Effective date, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-11-01")]
    effective_at: String,
    /// How the money was paid out.
    method: DisbursementMethod,
    /// Reference of the payout, 1–255 characters without control characters.
    #[schema(min_length = 1, max_length = 255)]
    destination_ref: Option<String>,
    metadata: Option<Metadata>,
}
