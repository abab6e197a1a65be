//! `GET /v1/loans/{loan_id}/balance[?as_of_date=]` (`hpts:balances:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::Scope;
use crate::clock::{format_date, parse_date};
use crate::http::AppState;
use crate::http::dto::LoanBalance;
use crate::http::handlers::query_params;
use crate::http::problem::{ApiError, FieldError};
use crate::ledger::ids::LoanId;

/// Parses a path id; a malformed one is 400 naming the parameter.
pub fn path_id<T>(
    raw: &str,
    name: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            name,
            "invalid_format",
            "must be a UUID",
        )])
    })
}

/// Handler.
pub async fn balance(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::BalancesRead).await?;
    let loan_id = path_id(&path, "loan_id", LoanId::parse)?;
    let query = query_params(&req, &["as_of_date"])?;
    let as_of = match query.get("as_of_date") {
        None => None,
        Some(s) => Some(parse_date(s).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "as_of_date",
                "invalid_format",
                "must be a date YYYY-MM-DD",
            )])
        })?),
    };
    let view = state
        .store
        .loan_balance(principal.tenant, loan_id, as_of)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let as_of_date = format_date(as_of.unwrap_or_else(|| state.sources.clock.now().date()));
    Ok(HttpResponse::Ok().json(LoanBalance::new(view, as_of_date)))
}
