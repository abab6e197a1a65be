//! `GET /v1/reconciliation/status[?as_of_date=]` (`hpts:reconciliation:read`): the proof that
//! the caller's ledger is whole, computed on one read snapshot (never blocks writers). It is a
//! heavy read: one at a time per tenant (`HPTS_HEAVY_READS_PER_TENANT`), refused with 503
//! `overloaded` and `Retry-After` over the bound, and stopped when the client disconnects.
//! The roll-up totals are exact `i128` sums, written as decimal strings. Each report is counted
//! for `/metrics` (`hpts_reconciliation_failures_total` when anything is `mismatch`).

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::Scope;
use crate::clock::{format_date, format_timestamp};
use crate::http::AppState;
use crate::http::handlers::Query;
use crate::http::problem::ApiError;

const fn status(ok: bool) -> &'static str {
    if ok { "ok" } else { "mismatch" }
}

/// Handler.
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
    let checks: Vec<_> = report
        .checks
        .iter()
        .map(|c| json!({ "name": c.name, "status": status(c.ok), "detail": c.detail }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "as_of_date": format_date(as_of.unwrap_or_else(|| now.date())),
        "ledger_integrity": {
            "status": status(report.ok()),
            "mismatched_account_count": report.mismatched_account_count,
            "checked_at": format_timestamp(now),
        },
        "bank_reconciliation": [],
        "portfolio_rollup": {
            "status": status(report.rollup.ok()),
            "gl_principal_minor": report.rollup.gl_principal_minor().to_string(),
            "sum_of_loan_balances_minor": report.rollup.sum_of_loan_balances_minor().to_string(),
        },
        "checks": checks,
    })))
}
