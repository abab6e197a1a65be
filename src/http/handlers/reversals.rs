//! `POST /v1/reversals` (`hpts:reversals:write`): posts the exact mirror of an entry.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::Metadata;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, ReasonCode, Reversal};
use crate::ledger::ids::EntryId;

/// Reverse a journal entry
///
/// Requires scope `hpts:reversals:write`. Posts the exact mirror of the original entry's
/// lines and undoes its effect on loan balances. An entry is reversed at most once; a
/// reversal cannot be reversed; reverse later activity first when the reversal would make a
/// loan balance negative. An event with live dependents is reversed only after them: a
/// disbursement after its settlement, a fee after its waivers, a charge-off after the
/// recoveries posted after it, and a payment or recovery after its return.
#[utoipa::path(
    post,
    path = "/v1/reversals",
    operation_id = "create_reversal",
    tag = "writes",
    request_body(content = ReversalRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::ReversalReceipt),
        (status = 404, description = "`not_found`: no such journal entry in this tenant.",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_reversed`, or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: an `effective_at` on or before the tenant's lock date; without `effective_at`, an entry in a closed period is reversed on the day after the lock date), `cannot_reverse_reversal`, `event_returned` (a payment or recovery with a live return) or `reversal_blocked_by_later_activity` (a loan balance would go negative, or the entry has a live dependent: a disbursement's settlement, a fee's waiver, a recovery posted after a charge-off).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:reversals:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let reverses = o.uuid("reverses_entry_id", true, &mut r);
    let reason_code = o.one_of(
        "reason_code",
        true,
        ReasonCode::parse,
        ReasonCode::WIRE,
        &mut r,
    );
    let reason_description = o.text("reason_description", false, 0, 500, &mut r);
    let effective_at = o.date("effective_at", false, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (reverses, reason_code) {
        (Some(reverses), Some(reason_code)) => Ok(Command::Reverse(Reversal {
            reverses_entry_id: EntryId::from_uuid(reverses),
            reason_code,
            reason_description,
            effective_at,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::ReversalsWrite,
    route: "POST /v1/reversals",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/reversals`: posts the exact mirror of an entry's lines. An entry is reversed at
/// most once; a reversal cannot be reversed. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ReversalRequest {
    /// The journal entry to reverse (another tenant's or a missing one is 404).
    #[schema(format = "uuid")]
    reverses_entry_id: String,
    /// Why.
    reason_code: ReasonCode,
    /// Free text, at most 500 characters, without control characters.
    #[schema(max_length = 500)]
    reason_description: Option<String>,
    /// Effective date of the reversal, `YYYY-MM-DD`; after the tenant's lock date (else 422
    /// `period_closed`). Defaults to the original's, or, when the original lies in a closed
    /// period, to the day after the lock date.
    #[schema(format = Date)]
    effective_at: Option<String>,
    metadata: Option<Metadata>,
}
