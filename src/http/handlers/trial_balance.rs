//! `GET /v1/trial-balance?currency=USD[&as_of_date=]` (`hpts:balances:read`): every account of
//! the chart in code order with its debit and credit totals and its normal-side balance, by
//! `effective_at` on or before the date (default today), on one read snapshot.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use utoipa::IntoParams;

use crate::auth::Scope;
use crate::clock::format_date;
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::CurrencyCode;
use crate::http::{AppState, dto};

/// Get the trial balance
///
/// Requires scope `hpts:balances:read`. Every account of the chart in code order, zero
/// balances included, with its debit and credit totals and its balance on its normal side,
/// over the tenant's lines in one currency effective on or before `as_of_date` (default
/// today, UTC), on one read snapshot.
#[utoipa::path(
    get,
    path = "/v1/trial-balance",
    operation_id = "get_trial_balance",
    tag = "reads",
    params(TrialBalanceQuery),
    responses(
        (status = 200, description = "The trial balance.", body = dto::TrialBalance),
        (status = 400, description = "`validation_failed`: a missing, malformed or unknown (`unknown_currency`) `currency`, a malformed `as_of_date`, or an unknown or repeated query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: no read connection was free within 1 s.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = ["hpts:balances:read"])),
)]
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
    Ok(HttpResponse::Ok().json(dto::TrialBalance::new(&tb, format_date(date))))
}

// The query string, described for the `OpenAPI` document.

/// Query of `GET /v1/trial-balance`. Unknown or repeated parameters are 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct TrialBalanceQuery {
    /// Active ISO 4217 code of the trial balance (required; an unknown code is 400
    /// `unknown_currency`). A currency the tenant never used answers zeros.
    #[param(inline)]
    currency: CurrencyCode,
    /// Count only lines effective on or before this date (`YYYY-MM-DD`); today (UTC) when
    /// absent.
    #[param(format = Date)]
    as_of_date: Option<String>,
}
