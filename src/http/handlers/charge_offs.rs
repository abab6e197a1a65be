//! `POST /v1/charge-offs` (`hpts:chargeoffs:write`): writes a loan off — principal to credit
//! losses (5000), accrued interest and fees back against their income accounts.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::Metadata;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{ChargeOff, ChargeOffReason, Command};
use crate::ledger::ids::LoanId;

/// Charge off a loan
///
/// Requires scope `hpts:chargeoffs:write`. Writes the loan off as uncollectable (event type
/// `chargeoff`): for each non-zero balance, in this order, Dr 5000 credit losses / Cr 1100
/// principal, Dr 4000 interest income / Cr 1200 interest, Dr 4100 fee income / Cr 1300
/// fees. Afterwards the loan is `charged_off`, its principal, interest and fees are 0 and
/// its balance shows `charged_off_minor`. Payments on it are then recoveries (see `POST
/// /v1/payments`); disbursements, fees and accruals on it are refused with
/// `loan_charged_off`. The charge-off can be reversed while no recovery posted after it is
/// live.
#[utoipa::path(
    post,
    path = "/v1/charge-offs",
    operation_id = "create_charge_off",
    tag = "writes",
    request_body(content = ChargeOffRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::ChargeOffReceipt),
        (status = 409, description = "`already_charged_off` (the loan has a live charge-off), or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found` (field `loan_id`), `nothing_to_charge_off` (principal, interest and fees are all 0), `effective_before_loan` (field `effective_at`) or `amount_out_of_range`.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:chargeoffs:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let reason_code = o.one_of(
        "reason_code",
        true,
        ChargeOffReason::parse,
        ChargeOffReason::WIRE,
        &mut r,
    );
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, effective_at, reason_code) {
        (Some(loan_id), Some(effective_at), Some(reason_code)) => {
            Ok(Command::ChargeOff(ChargeOff {
                loan_id: LoanId::from_uuid(loan_id),
                effective_at,
                reason_code,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::ChargeoffsWrite,
    route: "POST /v1/charge-offs",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/charge-offs`: write a loan off as uncollectable. A loan is charged off at most
/// once. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ChargeOffRequest {
    /// The loan (must exist: else 422 `loan_not_found`).
    #[schema(format = "uuid")]
    loan_id: String,
    /// Effective date, `YYYY-MM-DD`; not before the loan's first disbursement (else 422
    /// `effective_before_loan`).
    #[schema(format = Date, example = "2026-12-10")]
    effective_at: String,
    /// Why the loan is written off.
    reason_code: ChargeOffReason,
    metadata: Option<Metadata>,
}
