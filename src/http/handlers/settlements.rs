//! `POST /v1/disbursement-settlements` (`hpts:disbursements:write`): the disbursed money left
//! the lender's bank account, Dr 2000 / Cr 1000.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::Metadata;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Settlement};
use crate::ledger::ids::EventId;

/// `^[A-Za-z0-9._:\-]+$`.
fn bank_ref_chars(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// Settle a disbursement
///
/// Requires scope `hpts:disbursements:write`. The disbursed money has left the lender's bank
/// account: posts Dr 2000 disbursement clearing / Cr 1000 cash for the disbursement's
/// amount (event type `disbursement_settled`). Both lines carry the loan's `loan_id` and
/// `borrower_id`, but the loan's balances do not change. A disbursement settles at most
/// once; while its settlement is live the disbursement cannot be reversed.
#[utoipa::path(
    post,
    path = "/v1/disbursement-settlements",
    operation_id = "create_disbursement_settlement",
    tag = "writes",
    request_body(content = DisbursementSettlementRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::DisbursementSettlementReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a `bank_account_ref` outside 1–64 characters of `^[A-Za-z0-9._:\\-]+$`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no disbursement with this `disbursement_event_id` in this tenant (also when the id is another kind of event).",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_settled` (the disbursement has a live settlement; reverse it to settle again), or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `event_reversed` (the disbursement is reversed), `effective_before_original` (field `effective_at`: dated before the disbursement) or `amount_out_of_range`.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:disbursements:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let disbursement = o.uuid("disbursement_event_id", true, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let bank_account_ref = o.token(
        "bank_account_ref",
        false,
        64,
        bank_ref_chars,
        "^[A-Za-z0-9._:\\-]{1,64}$",
        &mut r,
    );
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (disbursement, effective_at) {
        (Some(disbursement), Some(effective_at)) => Ok(Command::Settle(Settlement {
            disbursement_event_id: EventId::from_uuid(disbursement),
            effective_at,
            bank_account_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::DisbursementsWrite,
    route: "POST /v1/disbursement-settlements",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/disbursement-settlements`: the disbursed money left the lender's bank account.
/// A disbursement settles at most once. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct DisbursementSettlementRequest {
    /// The disbursement settled (a `disbursement` event of this tenant: else 404
    /// `not_found`).
    #[schema(format = "uuid")]
    disbursement_event_id: String,
    /// Effective date, `YYYY-MM-DD`; not before the disbursement's (else 422
    /// `effective_before_original`).
    #[schema(format = Date, example = "2026-11-02")]
    effective_at: String,
    /// The bank account the money left, 1–64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9._:\-]+$",
        example = "bank:operating-1"
    )]
    bank_account_ref: Option<String>,
    metadata: Option<Metadata>,
}
