//! `POST /v1/period-closes` (`hpts:periods:write`): closes every day up to and including
//! `through_date` — from the commit on, no write may be dated on or before it — and stores the
//! trial balance of every currency as of that day; it posts no journal entry. `GET
//! /v1/period-closes` (`hpts:ledger:read`) lists the closes, newest first, with the lock date.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::body::SMALL_LIMIT;
use crate::http::dto::{PeriodCloseList, PeriodCloseSummary};
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::Metadata;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, PeriodClose};

/// Close a period
///
/// Requires scope `hpts:periods:write`. Closes every day up to and including
/// `through_date` for the caller's tenant: from the commit on, `through_date` is the
/// tenant's lock date, and every write dated on or before it (`effective_at`, or an accrual
/// batch's `accrual_date`) is 422 `period_closed`; a reversal without `effective_at` of an
/// entry in a closed period is dated the day after the lock date. The close stores the trial
/// balance as of `through_date` of every currency the tenant has posted in, which the
/// reconciliation check `closed_periods_unchanged` recomputes. It posts no journal entry and
/// sends no webhook. A closed period cannot be reopened.
#[utoipa::path(
    post,
    path = "/v1/period-closes",
    operation_id = "create_period_close",
    tag = "writes",
    request_body(content = PeriodCloseRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Closed.", body = crate::http::receipts::PeriodCloseReceipt),
        (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a missing or malformed `through_date`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`period_already_closed` (field `through_date`: on or before the tenant's lock date), or `idempotency_in_progress` (with `Retry-After`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
        (status = 422, description = "`idempotency_mismatch` or `close_date_not_past` (field `through_date`: today or later, UTC).",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:periods:write"])),
)]
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let through_date = o.date("through_date", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match through_date {
        Some(through_date) => Ok(Command::ClosePeriod(PeriodClose { through_date })),
        None => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PeriodsWrite,
    route: "POST /v1/period-closes",
    limit: SMALL_LIMIT,
};

/// List the period closes
///
/// Requires scope `hpts:ledger:read`. The tenant's lock date (the latest `through_date`, or
/// `null`) and every period close, newest first. No query parameters.
#[utoipa::path(
    get,
    path = "/v1/period-closes",
    operation_id = "list_period_closes",
    tag = "reads",
    responses(
        (status = 200, description = "The lock date and the closes.", body = PeriodCloseList),
        (status = 400, description = "`validation_failed`: any query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: no read connection was free within 1 s.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = ["hpts:ledger:read"])),
)]
pub async fn list(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    Query::parse(&req, &[])?.finish()?;
    let (lock_date, items) = state.store.period_closes(principal.tenant).await?;
    Ok(HttpResponse::Ok().json(PeriodCloseList {
        lock_date,
        items: items.into_iter().map(PeriodCloseSummary::from).collect(),
    }))
}

// The body [`parse`] accepts, described for the `OpenAPI` document (closed, with every wire
// rule the parser enforces).

/// `POST /v1/period-closes`: close every day up to and including `through_date`. The
/// `metadata` is stored with the close (no read returns it today). `null` counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct PeriodCloseRequest {
    /// The last day closed, `YYYY-MM-DD`: before today, UTC (else 422
    /// `close_date_not_past`), and after the tenant's current lock date (else 409
    /// `period_already_closed`).
    #[schema(format = Date, example = "2026-11-30")]
    through_date: String,
    metadata: Option<Metadata>,
}
