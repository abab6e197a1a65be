//! `POST /v1/fee-waivers` (`hpts:fees:write`): forgives all or part of an assessed fee,
//! Dr 4100 / Cr 1300.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, FeeWaiver};
use crate::ledger::ids::EventId;

/// Waive a fee
///
/// Requires scope `hpts:fees:write`. Forgives all or part of an assessed fee: posts Dr 4100
/// fee income / Cr 1300 fees receivable (event type `fee_waived`). Waivable now = the fee's
/// amount less what live waivers already waived of it, capped at the loan's fees
/// receivable; without `amount_minor` all of it is waived. While a waiver is live the fee
/// cannot be reversed.
#[utoipa::path(
    post,
    path = "/v1/fee-waivers",
    operation_id = "create_fee_waiver",
    tag = "writes",
    request_body(content = FeeWaiverRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::FeeWaiverReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a missing or empty `reason`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no fee (`fee_assessed` event) with this `fee_event_id` in this tenant (also when the id is another kind of event).",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `waiver_exceeds_outstanding` (field `amount_minor`: above the waivable amount, or nothing is waivable, e.g. on a charged-off loan), `event_reversed` (the fee is reversed), `amount_must_be_positive` or `effective_before_original` (field `effective_at`: dated before the fee).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:fees:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let fee = o.uuid("fee_event_id", true, &mut r);
    let amount = o.optional_money("amount_minor", &mut r);
    let reason = o.text("reason", true, 1, 500, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (fee, reason, effective_at) {
        (Some(fee), Some(reason), Some(effective_at)) => Ok(Command::WaiveFee(FeeWaiver {
            fee_event_id: EventId::from_uuid(fee),
            amount,
            reason,
            effective_at,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::FeesWrite,
    route: "POST /v1/fee-waivers",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/fee-waivers`: forgive all or part of an assessed fee. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct FeeWaiverRequest {
    /// The fee waived (a `fee_assessed` event of this tenant: else 404 `not_found`).
    #[schema(format = "uuid")]
    fee_event_id: String,
    /// Amount waived in minor units, greater than 0, at most the waivable amount: the fee's
    /// amount less what live waivers already waived of it, capped at the loan's fees
    /// receivable now (else 422 `waiver_exceeds_outstanding`). Absent: the whole waivable
    /// amount.
    amount_minor: Option<MinorUnits>,
    /// Why, 1–500 characters without control characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "goodwill: first late payment"
    )]
    reason: String,
    /// Effective date, `YYYY-MM-DD`; not before the fee's (else 422
    /// `effective_before_original`).
    #[schema(format = Date, example = "2026-12-03")]
    effective_at: String,
    metadata: Option<Metadata>,
}
