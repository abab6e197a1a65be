//! `GET /v1/reconciliation/status[?as_of_date=]` (`hpts:reconciliation:read`): the proof that
//! the caller's ledger is whole, computed on one read snapshot (never blocks writers). It is a
//! heavy read: one at a time per tenant (`HPTS_HEAVY_READS_PER_TENANT`), refused with 503
//! `overloaded` and `Retry-After` over the bound, and stopped when the client disconnects.
//! The roll-up totals are exact `i128` sums, written as decimal strings. Each report is counted
//! for `/metrics` (`hpts_reconciliation_failures_total` when anything is `mismatch`).

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use utoipa::IntoParams;

use crate::auth::Scope;
use crate::clock::{format_date, format_timestamp};
use crate::http::AppState;
use crate::http::dto::{
    LedgerIntegrity, PortfolioRollup, ReconciliationCheck, ReconciliationStatus,
};
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, Problem};

/// Get the reconciliation status
///
/// Requires scope `hpts:reconciliation:read`. For the caller's tenant, on one read snapshot
/// (never blocks writers): trial balance per currency, every entry balanced, loan
/// sub-ledger against the GL control accounts, materialised balances against a replay of
/// the lines, the hash chain, the append-only guard, and every period close's stored trial
/// balance against one recomputed as of its `through_date`.
#[utoipa::path(
    get,
    path = "/v1/reconciliation/status",
    operation_id = "get_reconciliation_status",
    tag = "reads",
    params(ReconciliationQuery),
    responses(
        (status = 200, description = "The checks and their outcome.", body = ReconciliationStatus),
        (status = 400, description = "`validation_failed`: a malformed `as_of_date`, or an unknown or repeated query parameter.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:reconciliation:read"])),
)]
pub async fn status_report(
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::ReconciliationRead).await?;
    let mut query = Query::parse(&req, &["as_of_date"])?;
    let as_of = query.date("as_of_date");
    query.finish()?;
    let report = state.store.reconcile(principal.tenant, as_of).await?;
    let now = state.sources.clock.now();
    state
        .store
        .stats()
        .reconciliations
        .record(&report, now.unix_timestamp());
    let checks = report
        .checks
        .iter()
        .map(|c| ReconciliationCheck {
            name: c.name,
            status: c.ok.into(),
            detail: c.detail.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ReconciliationStatus {
        as_of_date: format_date(as_of.unwrap_or_else(|| now.date())),
        ledger_integrity: LedgerIntegrity {
            status: report.ok().into(),
            mismatched_account_count: report.mismatched_account_count,
            checked_at: format_timestamp(now),
        },
        bank_reconciliation: Vec::new(),
        portfolio_rollup: PortfolioRollup {
            status: report.rollup.ok().into(),
            gl_principal_minor: report.rollup.gl_principal_minor().to_string(),
            sum_of_loan_balances_minor: report.rollup.sum_of_loan_balances_minor().to_string(),
        },
        checks,
    }))
}

// The query string, described for the `OpenAPI` document.

/// Query of `GET /v1/reconciliation/status`. Unknown or repeated parameters are 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ReconciliationQuery {
    /// Limit the trial balance and the portfolio roll-up to entries effective on or before
    /// this date (`YYYY-MM-DD`); the integrity checks always cover the whole ledger.
    #[param(format = Date)]
    as_of_date: Option<String>,
}
