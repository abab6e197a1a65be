//! `POST /v1/fees` (`hpts:fees:write`): Dr 1300 / Cr 4100.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{CurrencyCode, Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Fee, FeeType};
use crate::ledger::ids::LoanId;

/// Assess a fee
///
/// Requires scope `hpts:fees:write`. Posts Dr 1300 fees receivable / Cr 4100 fee income.
#[utoipa::path(
    post,
    path = "/v1/fees",
    operation_id = "create_fee",
    tag = "writes",
    request_body(content = FeeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::FeeReceipt),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found`, `currency_mismatch`, `amount_must_be_positive` or `loan_charged_off` (the loan is charged off).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:fees:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let fee_type = o.one_of("fee_type", true, FeeType::parse, FeeType::WIRE, &mut r);
    let amount = o.money("amount_minor", true, &mut r);
    let currency = o.currency("currency", &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, fee_type, amount, currency, effective_at) {
        (Some(loan_id), Some(fee_type), Some(amount), Some(currency), Some(effective_at)) => {
            Ok(Command::AssessFee(Fee {
                loan_id: LoanId::from_uuid(loan_id),
                fee_type,
                amount,
                currency,
                effective_at,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::FeesWrite,
    route: "POST /v1/fees",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/fees`. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct FeeRequest {
    /// The loan charged (must exist: else 422 `loan_not_found`).
    #[schema(format = "uuid")]
    loan_id: String,
    /// Kind of fee.
    fee_type: FeeType,
    /// Amount in minor units, greater than 0.
    amount_minor: MinorUnits,
    /// An active ISO 4217 code (else 400 `unknown_currency`) and the loan's currency (else
    /// 422 `currency_mismatch`).
    currency: CurrencyCode,
    /// Effective date, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-11-15")]
    effective_at: String,
    metadata: Option<Metadata>,
}
