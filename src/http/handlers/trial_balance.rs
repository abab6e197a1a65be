//! `GET /v1/trial-balance?currency=USD[&as_of_date=]` (`hpts:balances:read`): every account of
//! the chart in code order with its debit and credit totals and its normal-side balance, by
//! `effective_at` on or before the date (default today), on one read snapshot.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::clock::format_date;
use crate::http::AppState;
use crate::http::handlers::Query;
use crate::http::problem::ApiError;
use crate::ledger::trial_balance::TrialBalance;

/// The response body of a trial balance as of `as_of_date`.
pub fn body(tb: &TrialBalance, as_of_date: &str) -> Value {
    let accounts: Vec<Value> = tb
        .accounts
        .iter()
        .map(|a| {
            json!({
                "account_code": a.account.code(),
                "account_name": a.account.name(),
                "normal_balance": match a.account.normal_side() {
                    crate::ledger::accounts::Direction::Dr => "debit",
                    crate::ledger::accounts::Direction::Cr => "credit",
                },
                "dr_total_minor": a.dr.to_string(),
                "cr_total_minor": a.cr.to_string(),
                "balance_minor": a.balance().to_string(),
            })
        })
        .collect();
    json!({
        "as_of_date": as_of_date,
        "currency": tb.currency,
        "accounts": accounts,
        "dr_total_minor": tb.dr_total().to_string(),
        "cr_total_minor": tb.cr_total().to_string(),
        "balanced": tb.balanced(),
    })
}

/// Handler.
pub async fn show(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::BalancesRead).await?;
    let mut query = Query::parse(&req, &["currency", "as_of_date"])?;
    let currency = query.currency();
    let as_of = query.date("as_of_date");
    query.finish()?;
    let Some(currency) = currency else {
        return Err(ApiError::validation(Vec::new()));
    };
    let date = as_of.unwrap_or_else(|| state.sources.clock.now().date());
    let tb = state
        .store
        .trial_balance(principal.tenant, currency, date)
        .await?;
    Ok(HttpResponse::Ok().json(body(&tb, &format_date(date))))
}
