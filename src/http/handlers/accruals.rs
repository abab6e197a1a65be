//! `POST /v1/accruals/batch` (`hpts:accruals:write`): up to 10 000 loans in one all-or-nothing
//! entry, per loan Dr 1200 / Cr 4000. Body limit 4 MiB.

use std::collections::HashMap;

use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::body::BATCH_LIMIT;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::schema::MinorUnits;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::accrual::DayCount;
use crate::ledger::commands::{AccrualBatch, AccrualItem, Command};
use crate::ledger::ids::{LoanId, ProgramId};

/// Most loans in one batch.
pub const MAX_LOANS: usize = 10_000;
/// Highest accepted annual rate (1000 % in basis points).
pub const MAX_RATE_BPS: u32 = 100_000;

/// Accrue daily interest for a batch of loans
///
/// Requires scope `hpts:accruals:write`. All or nothing: one journal entry with, per loan,
/// Dr 1200 interest receivable / Cr 4000 interest income; the inputs of every line are
/// stored. Body limit 4 MiB.
#[utoipa::path(
    post,
    path = "/v1/accruals/batch",
    operation_id = "create_accrual_batch",
    tag = "writes",
    request_body(content = AccrualBatchRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = crate::http::receipts::AccrualReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. `loans[3].interest_minor`; a loan listed twice is `duplicate`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `accrual_date`: on or before the tenant's lock date), `amount_must_be_positive`, or a refused batch: `loan_not_found`, `principal_mismatch`, `interest_mismatch`, `already_accrued`, `mixed_currency_batch` or `loan_charged_off` (field `loans[i].loan_id`) (the code of the first refused loan), with one `errors[]` item per refused loan. Nothing is written.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:accruals:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let program_id = o.uuid("program_id", true, &mut r);
    let accrual_date = o.date("accrual_date", true, &mut r);
    let convention = o.one_of(
        "day_count_convention",
        true,
        DayCount::parse,
        &["ACT_365", "ACT_360", "30_360"],
        &mut r,
    );
    let items = o.array("loans", 1, MAX_LOANS, &mut r);
    let mut loans = Vec::with_capacity(items.map_or(0, <[Value]>::len));
    let mut seen: HashMap<LoanId, usize> = HashMap::new();
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let path = format!("loans[{i}]");
        let Some(mut lo) = Obj::new(item, &path, &mut r) else {
            continue;
        };
        let loan_id = lo.uuid("loan_id", true, &mut r).map(LoanId::from_uuid);
        let principal = lo.money("outstanding_principal_minor", false, &mut r);
        let interest = lo.money("interest_minor", true, &mut r);
        let rate = lo.small_uint("annual_rate_bps", MAX_RATE_BPS, &mut r);
        lo.finish(&mut r);
        if let Some(id) = loan_id
            && let Some(first) = seen.insert(id, i)
        {
            r.errors.push(FieldError::new(
                format!("{path}.loan_id"),
                "duplicate",
                format!("loan already appears at loans[{first}]"),
            ));
        }
        if let (Some(loan_id), Some(outstanding_principal), Some(interest)) =
            (loan_id, principal, interest)
        {
            loans.push(AccrualItem {
                loan_id,
                outstanding_principal,
                interest,
                annual_rate_bps: rate,
            });
        }
    }
    o.finish(&mut r);
    finish_report(r)?;
    match (program_id, accrual_date, convention) {
        (Some(program_id), Some(accrual_date), Some(convention)) => {
            Ok(Command::Accrue(AccrualBatch {
                program_id: ProgramId::from_uuid(program_id),
                accrual_date,
                convention,
                loans,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::AccrualsWrite,
    route: "POST /v1/accruals/batch",
    limit: BATCH_LIMIT,
};

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/accruals/batch`: all or nothing. Every loan must exist in the tenant, share one
/// currency, carry the ledger's principal outstanding at commit time, and not be accrued
/// yet for `accrual_date` (else 422 with one `errors[]` item per refused loan). Body limit
/// 4 MiB.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AccrualBatchRequest {
    /// The accrual program (the client's identifier).
    #[schema(format = "uuid")]
    program_id: String,
    /// The day accrued, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-11-30")]
    accrual_date: String,
    /// Day-count convention of the daily interest.
    day_count_convention: DayCount,
    /// One item per loan, each loan at most once.
    #[schema(min_items = 1, max_items = 10000)]
    loans: Vec<AccrualBatchLoan>,
}

/// One loan of an accrual batch.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AccrualBatchLoan {
    /// The loan.
    #[schema(format = "uuid")]
    loan_id: String,
    /// Must equal the ledger's principal outstanding at commit time (else 422
    /// `principal_mismatch`).
    outstanding_principal_minor: MinorUnits,
    /// The day's interest in minor units, greater than 0.
    interest_minor: MinorUnits,
    /// Annual rate in basis points. When present, `interest_minor` must equal principal ×
    /// rate ÷ days-in-year of the convention, rounded half to even (else 422
    /// `interest_mismatch`).
    #[schema(minimum = 0, maximum = 100_000, example = 1000)]
    annual_rate_bps: Option<u32>,
}
