//! `POST /v1/adjustments` (`hpts:adjustments:write`): a manual, balanced journal entry on chart
//! accounts other than the loan control accounts (bank charges, clearing corrections).

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::{ACCOUNT_CODE_PATTERN, AccountCode, CurrencyCode, Metadata, MinorUnits};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::accounts::Direction;
use crate::ledger::commands::{Adjustment, AdjustmentLine, Command};

/// Fewest and most lines of one adjustment.
pub const LINES: (usize, usize) = (2, 50);

/// `^[0-9]{4}$`.
fn account_code(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Post a manual adjustment
///
/// Requires scope `hpts:adjustments:write`. A manual journal entry for the accountant (bank
/// charges, clearing corrections): the request's lines in request order (sequence 1..n),
/// with no `loan_id`, event type `manual_adjustment`, and the request's `description` as the
/// entry's. The loan control accounts 1100, 1200, 1300 and 2100 are refused: loans are
/// corrected with reversals and the loan lifecycle writes.
#[utoipa::path(
    post,
    path = "/v1/adjustments",
    operation_id = "create_adjustment",
    tag = "writes",
    request_body(content = AdjustmentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::AdjustmentReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`: fewer than 2 or more than 50 `lines`, a malformed `lines[i].account_code` or `lines[i].direction`, an unknown currency with `errors[].code` `unknown_currency`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `entry_unbalanced` (field `lines`: debits differ from credits in some currency), `account_not_found` (field `lines[i].account_code`: not in the chart), `account_not_adjustable` (field `lines[i].account_code`: 1100, 1200, 1300 or 2100), `amount_must_be_positive` (field `lines[i].amount_minor`) or `amount_out_of_range`.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:adjustments:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let effective_at = o.date("effective_at", true, &mut r);
    let description = o.text("description", true, 1, 500, &mut r);
    let items = o.array("lines", LINES.0, LINES.1, &mut r);
    let mut lines = Vec::with_capacity(items.map_or(0, <[Value]>::len));
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let path = format!("lines[{i}]");
        let Some(mut lo) = Obj::new(item, &path, &mut r) else {
            continue;
        };
        let code = lo.token(
            "account_code",
            true,
            4,
            account_code,
            ACCOUNT_CODE_PATTERN,
            &mut r,
        );
        let direction = lo.one_of("direction", true, Direction::parse, &["DR", "CR"], &mut r);
        let amount = lo.money("amount_minor", true, &mut r);
        let currency = lo.currency("currency", &mut r);
        lo.finish(&mut r);
        if let (Some(account_code), Some(direction), Some(amount), Some(currency)) =
            (code, direction, amount, currency)
        {
            lines.push(AdjustmentLine {
                account_code,
                direction,
                amount,
                currency,
            });
        }
    }
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (effective_at, description) {
        (Some(effective_at), Some(description)) => Ok(Command::Adjust(Adjustment {
            effective_at,
            description,
            lines,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::AdjustmentsWrite,
    route: "POST /v1/adjustments",
    limit: SMALL_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/adjustments`: a manual journal entry for the accountant. The lines are posted
/// in request order and carry no `loan_id`. `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AdjustmentRequest {
    /// Effective date, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-12-20")]
    effective_at: String,
    /// Becomes the entry's `description`; 1–500 characters without control characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "bank charges, November statement"
    )]
    description: String,
    /// 2–50 lines (else 400 `validation_failed`, field `lines`); per currency, debits must
    /// equal credits (else 422 `entry_unbalanced`, field `lines`).
    #[schema(min_items = 2, max_items = 50)]
    lines: Vec<AdjustmentLineBody>,
    metadata: Option<Metadata>,
}

/// One line of a manual adjustment.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AdjustmentLine)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AdjustmentLineBody {
    /// A GL account of the chart (else 422 `account_not_found`), not one of the loan control
    /// accounts 1100, 1200, 1300 and 2100 (else 422 `account_not_adjustable`).
    account_code: AccountCode,
    direction: Direction,
    /// Amount in minor units, greater than 0 (`"0"` is 422 `amount_must_be_positive`).
    amount_minor: MinorUnits,
    /// An active ISO 4217 code (else 400, `errors[].code` `unknown_currency`).
    currency: CurrencyCode,
}
