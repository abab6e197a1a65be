//! `POST /v1/payments` (`hpts:payments:write`): Dr 1000, credits allocated fees → interest →
//! principal → suspense.

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{CurrencyCode, Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Payment, PaymentMethod};
use crate::ledger::ids::{BorrowerId, LoanId};

/// Record a payment
///
/// Requires scope `hpts:payments:write`. Posts Dr 1000 cash for the amount and, for each
/// non-zero part of the allocation waterfall (fees → interest → principal → suspense), Cr
/// 1300 / 1200 / 1100 / 2100 (event type `payment_received`, `recovery_minor` `"0"`). On a
/// charged-off loan the payment is a recovery (event type `recovery`): Dr 1000 / Cr 4200
/// recoveries up to `charged_off_minor − recovered_minor`, any rest Cr 2100 suspense; the
/// answer has `recovery_minor` and an allocation that is `"0"` except `suspense_minor`.
#[utoipa::path(
    post,
    path = "/v1/payments",
    operation_id = "create_payment",
    tag = "writes",
    request_body(content = PaymentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::PaymentReceipt),
        (status = 409, description = "`duplicate_external_ref` (another payment of this tenant has this `external_ref`), or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found`, `borrower_mismatch`, `currency_mismatch` or `amount_must_be_positive`.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:payments:write"])),
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
    let source_method = o.one_of(
        "source_method",
        true,
        PaymentMethod::parse,
        PaymentMethod::WIRE,
        &mut r,
    );
    let external_ref = o.text("external_ref", false, 1, 255, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (
        loan_id,
        borrower_id,
        amount,
        currency,
        effective_at,
        source_method,
    ) {
        (
            Some(loan_id),
            Some(borrower_id),
            Some(amount),
            Some(currency),
            Some(effective_at),
            Some(source_method),
        ) => Ok(Command::Pay(Payment {
            loan_id: LoanId::from_uuid(loan_id),
            borrower_id: BorrowerId::from_uuid(borrower_id),
            amount,
            currency,
            effective_at,
            source_method,
            external_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PaymentsWrite,
    route: "POST /v1/payments",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/payments`. Allocated fees → interest → principal, each capped at what the loan
/// owes; the rest goes to borrower suspense. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PaymentRequest {
    /// The loan paid (must exist: else 422 `loan_not_found`).
    #[schema(format = "uuid")]
    loan_id: String,
    /// Must be the loan's borrower (else 422 `borrower_mismatch`).
    #[schema(format = "uuid")]
    borrower_id: String,
    /// Amount in minor units, greater than 0.
    amount_minor: MinorUnits,
    /// An active ISO 4217 code (else 400 `unknown_currency`) and the loan's currency (else
    /// 422 `currency_mismatch`).
    currency: CurrencyCode,
    /// Effective date, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-12-01")]
    effective_at: String,
    /// How the money arrived.
    source_method: PaymentMethod,
    /// The processor's reference, 1–255 characters without control characters; unique per
    /// tenant (a second use is 409 `duplicate_external_ref`).
    #[schema(min_length = 1, max_length = 255)]
    external_ref: Option<String>,
    metadata: Option<Metadata>,
}
