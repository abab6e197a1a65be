//! `POST /v1/payment-returns` (`hpts:payments:write`): a received payment came back; its
//! allocation goes back on the loan, optionally with a returned-payment fee.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, PaymentReturn, ReturnReason};
use crate::ledger::ids::EventId;

/// `^R[0-9]{2}$`, the ACH return code.
fn ach_return_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && b[0] == b'R' && b[1..].iter().all(u8::is_ascii_digit)
}

/// Return a payment
///
/// Requires scope `hpts:payments:write`. A received payment came back (ACH return, bounced
/// cheque); event type `payment_returned`. For an ordinary payment, posts Cr 1000 cash for
/// its amount, then Dr 1300 / 1200 / 1100 / 2100 for each non-zero part of its original
/// allocation, then, with `nsf_fee_minor`, Dr 1300 / Cr 4100 for the fee; the loan's
/// balances go back up by those parts (plus the fee) and `paid_total_minor` down by the
/// amount. A returned recovery posts the mirror of the recovery's lines (Cr 1000, Dr 4200,
/// Dr 2100) and lowers `recovered_minor`. A payment is returned at most once; a returned
/// payment cannot be reversed until its return is reversed.
#[utoipa::path(
    post,
    path = "/v1/payment-returns",
    operation_id = "create_payment_return",
    tag = "writes",
    request_body(content = PaymentReturnRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::PaymentReturnReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a `return_code` not matching `^R[0-9]{2}$`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no payment (`payment_received` or `recovery` event) with this `payment_event_id` in this tenant (also when the id is another kind of event).",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_returned` (the payment has a live return), or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `event_reversed` (the payment is reversed), `loan_charged_off` (field `payment_event_id`: an ordinary payment of a loan that is charged off now, reverse the charge-off first; field `nsf_fee_minor`: a fee on a charged-off loan), `amount_must_be_positive` (`nsf_fee_minor` `\"0\"`), `effective_before_original` (field `effective_at`: dated before the payment) or `amount_out_of_range`.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:payments:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let payment = o.uuid("payment_event_id", true, &mut r);
    let return_reason = o.one_of(
        "return_reason",
        true,
        ReturnReason::parse,
        ReturnReason::WIRE,
        &mut r,
    );
    let return_code = o.token(
        "return_code",
        false,
        3,
        ach_return_code,
        "^R[0-9]{2}$",
        &mut r,
    );
    let effective_at = o.date("effective_at", true, &mut r);
    let nsf_fee = o.optional_money("nsf_fee_minor", &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (payment, return_reason, effective_at) {
        (Some(payment), Some(return_reason), Some(effective_at)) => {
            Ok(Command::ReturnPayment(PaymentReturn {
                payment_event_id: EventId::from_uuid(payment),
                return_reason,
                return_code,
                effective_at,
                nsf_fee,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PaymentsWrite,
    route: "POST /v1/payment-returns",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/payment-returns`: a received payment (or a recovery) came back. A payment is
/// returned at most once. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PaymentReturnRequest {
    /// The payment returned (a `payment_received` or `recovery` event of this tenant: else
    /// 404 `not_found`).
    #[schema(format = "uuid")]
    payment_event_id: String,
    /// Why the payment came back.
    return_reason: ReturnReason,
    /// The ACH return code.
    #[schema(pattern = "^R[0-9]{2}$", example = "R01")]
    return_code: Option<String>,
    /// Effective date, `YYYY-MM-DD`; not before the payment's (else 422
    /// `effective_before_original`).
    #[schema(format = Date, example = "2026-12-06")]
    effective_at: String,
    /// A returned-payment fee to assess with the return, in minor units, greater than 0
    /// (`"0"` is 422 `amount_must_be_positive`); refused on a charged-off loan (422
    /// `loan_charged_off`).
    nsf_fee_minor: Option<MinorUnits>,
    metadata: Option<Metadata>,
}
